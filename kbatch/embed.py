"""``kbatch embed``: read → normalize → subword-tokenize (CPU) → encode → write.

>>> result = embed("examples/reviews.parquet", "out/emb")      # doctest: +SKIP
>>> result.manifest["rows_embedded"]                            # doctest: +SKIP
2000
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.cluster import Cluster, Routing, open_cluster
from kbatch.config import ClusterConfig, load_cluster_config
from kbatch.encoders import POOLING_MODES, EncoderSettings, int8_model_path
from kbatch.errors import InputError
from kbatch.io.reader import plan_input
from kbatch.io.writer import OutputDir, PartitionWriter, part_name
from kbatch.manifest import RunResult, params_key, totals, versions
from kbatch.models import DEFAULT_MODEL, resolve_model
from kbatch.runner import run_partitions
from kbatch.stages import Encode, NormalizeText, SubwordTokenize
from kbatch.stages.encode import DTYPES

# Tokens per forward pass on CPU: measured best on 2 cores (docs/decisions.md).
CPU_TOKEN_BUDGET = 1024


def embed(
    source,
    output: str | os.PathLike[str],
    *,
    text_col: str = "text",
    id_col: str | None = None,
    model: str = DEFAULT_MODEL,
    partition_rows: int | None = None,
    normalize: bool = True,
    dtype: str = "float32",
    pooling: str | None = None,
    quantize: str | None = None,
    token_budget: int | None = None,
    overwrite: bool = False,
    cluster: ClusterConfig | str | os.PathLike[str] | None = None,
    client=None,
    report: str | os.PathLike[str] | None = None,
    progress: bool = True,
    log=sys.stderr,
) -> RunResult:
    """Embed the ``text_col`` of every row of ``source`` into Parquet files under ``output``.

    ``client`` reuses a connected ``distributed.Client``; otherwise ``cluster`` (a
    :class:`ClusterConfig` or a cluster.yaml path) says where to run.
    """
    started = time.perf_counter()
    _check_options(dtype, pooling, quantize, token_budget)
    plan = plan_input(source, text_col, id_col, partition_rows)
    spec = resolve_model(model)
    params = {
        "command": "embed",
        "input": plan.fingerprint["sha256"],
        "text_col": text_col,
        "id_col": id_col,
        "partition_rows": partition_rows,
        "model": spec.fingerprint,
        "pooling": pooling,
        "normalize": normalize,
        "dtype": dtype,
        "quantize": quantize,
    }
    key = params_key(params)
    out = OutputDir(output)
    done = out.prepare(key, len(plan.pieces), overwrite)
    todo = [p for p in plan.pieces if p.index not in done]
    config = cluster if isinstance(cluster, ClusterConfig) else load_cluster_config(cluster)
    with _connect(config, client, log) as connected, _performance_report(report):
        onnx_path = None
        if quantize == "int8":
            onnx_path = connected.client.submit(
                int8_model_path, spec.path, spec.fingerprint, resources=connected.routing.encode, pure=False
            ).result()
        encode = Encode(
            EncoderSettings(spec.path, pooling, onnx_path, connected.routing.torch_threads),
            token_budget=token_budget or CPU_TOKEN_BUDGET,
            normalize=normalize,
            dtype=dtype,
        )
        metadata = {"params": key, "model": spec.describe(), "normalize": normalize, "dtype": dtype,
                    "max_seq_length": spec.max_seq_length, "quantize": quantize}
        processing = time.perf_counter()
        records = run_partitions(
            connected,
            todo,
            prepare_args=(text_col, id_col, (NormalizeText(), SubwordTokenize(spec.path, spec.max_seq_length))),
            finish=encode_and_write,
            finish_args=(encode, PartitionWriter(str(out.path)), metadata),
            progress=progress,
        )
        processing = time.perf_counter() - processing
        start_seconds = connected.start_seconds
    partitions = sorted([r["partition"] for r in records] + [m["partition"] for m in done.values()], key=lambda p: p["index"])
    described = records[0] if records else next(iter(done.values()))
    counted = totals(partitions)
    total = time.perf_counter() - started
    processed_rows = sum(r["partition"]["rows"] for r in records)
    manifest = {
        "command": "embed",
        "status": "complete",
        "params_key": key,
        "params": params,
        "input": plan.fingerprint,
        "model": {**spec.describe(), "dimension": described["dimension"], "pooling": described["pooling"],
                  "max_seq_length": spec.max_seq_length},
        "output_schema": {"embedding": f"fixed_size_list<{dtype}>[{described['dimension']}]"},
        "partitions_total": len(plan.pieces),
        "partitions_done": len(records),
        "partitions_reused": len(done),
        **counted,
        "workers": sorted({str(p["worker"]) for p in partitions if p.get("worker") is not None}),
        "duplicate_ids": _duplicate_ids(out.path, len(plan.pieces)) if id_col else 0,
        "seconds": {"total": round(total, 3), "cluster_start": round(start_seconds, 3), "processing": round(processing, 3)},
        "throughput_rows_per_s": {
            "total": round(processed_rows / total, 2) if total else 0.0,
            "processing": round(processed_rows / processing, 2) if processing and processed_rows else 0.0,
        },
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out.write_manifest(manifest)
    if manifest["duplicate_ids"]:
        print(f"kbatch: warning: {manifest['duplicate_ids']:,} rows repeat an id of column {id_col!r}; all were kept", file=log)
    return RunResult(str(out.path), manifest)


def encode_and_write(prepared: tuple[pd.DataFrame, dict], index: int, encode: Encode, writer: PartitionWriter, metadata: dict) -> dict:
    """The finishing task of one partition: encode, write atomically, report counts."""
    frame, seconds = prepared
    start = time.perf_counter()
    frame = encode(frame)
    seconds["Encode"] = time.perf_counter() - start
    start = time.perf_counter()
    table = pa.table(
        {
            "id": pa.array(frame["id"]),
            "embedding": pa.array(frame["embedding"]),
            "n_tokens": pa.array(frame["n_tokens"], type=pa.int32()),
            "truncated": pa.array(frame["truncated"], type=pa.bool_()),
        }
    )
    description = encode.describe()
    partition = {
        "index": index,
        "rows": len(frame),
        "skipped": {str(k): int(v) for k, v in frame["skip_reason"].value_counts().items()},
        "truncated": int(frame["truncated"].sum()),
        "tokens": int(frame["n_tokens"].sum()),
        "seconds": seconds,
        "worker": _worker_name(),
    }
    record = {**metadata, **description, "partition": partition}
    writer.write(index, table, record)
    seconds["write"] = time.perf_counter() - start
    return record


def _worker_name() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().name)
    except ValueError:
        return None


def _check_options(dtype: str, pooling: str | None, quantize: str | None, token_budget: int | None) -> None:
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if pooling is not None and pooling not in POOLING_MODES:
        raise InputError(f"--pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
    if quantize not in (None, "int8"):
        raise InputError(f"--quantize supports only int8, got {quantize!r}")
    if token_budget is not None and token_budget < 1:
        raise InputError(f"--token-budget must be positive, got {token_budget}")


def _duplicate_ids(directory: Path, n_partitions: int) -> int:
    ids = pa.concat_arrays(
        [
            pq.read_table(directory / part_name(i), columns=["id"]).column("id").combine_chunks()
            for i in range(n_partitions)
        ]
    )
    return len(ids) - len(ids.unique())


@contextmanager
def _connect(config: ClusterConfig, client, log) -> Iterator[Cluster]:
    if client is None:
        with open_cluster(config, log=log) as cluster:
            yield cluster
        return
    workers = client.scheduler_info(n_workers=-1)["workers"]
    torch_threads = config.torch_threads if config.torch_threads != "auto" else None
    yield Cluster(client, Routing.from_workers(workers, torch_threads), client.dashboard_link, 0.0)


def _performance_report(path):
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return performance_report(filename=str(path))
