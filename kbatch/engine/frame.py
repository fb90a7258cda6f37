"""What every partitioned command shares: plan the input, resume the output, connect to
the cluster, run the partitions, and write the manifest and summary.

A command (``embed``, ``tokenize``) supplies only its parameters, the work to submit and
a description of its output; this module makes all of them resume, refuse mixed
parameters and report the same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.engine.cluster import Cluster, Routing, open_cluster
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.manifest import RunResult, params_key, totals, versions
from kbatch.engine.run import Prepared, current_step
from kbatch.errors import OutputConflictError
from kbatch.io.identity import combined_digest, piece_digest
from kbatch.io.lock import output_lock
from kbatch.io.reader import Piece, find_input_files, plan_input
from kbatch.io.writer import OutputDir, part_name

# Row-level errors (e.g. an analyzer rejecting a text) quoted in the manifest.
MAX_ERROR_EXAMPLES = 20
# Row numbers as ids cannot repeat or be missing.
NO_ID_PROBLEMS = {"duplicate_ids": 0, "null_ids": 0}

# work(cluster, pieces to do, output directory, params key) -> one record per partition
Work = Callable[[Cluster, Sequence[Piece], OutputDir, str], list[dict]]


@dataclass(frozen=True)
class RunOptions:
    """Where the input is and how a partitioned command runs; the same for every command."""

    text_col: str = "text"
    id_col: str | None = None
    partition_rows: int | None = None
    overwrite: bool = False
    cluster: ClusterConfig | str | os.PathLike[str] | None = None
    client: object = None
    report: str | os.PathLike[str] | None = None
    progress: bool = True
    log: TextIO = field(default=sys.stderr)


def run_command(
    command: str,
    source,
    output: str | os.PathLike[str],
    params: dict,
    options: RunOptions,
    work: Work,
    describe: Callable[[dict], dict],
    *,
    extra_cols: Sequence[tuple[str, str]] = (),
    text_flag: str = "--text-col",
    text_is_string: bool = True,
    finalize: Callable[[Path], dict] | None = None,
    check_duplicate_ids: bool = True,
    started: float | None = None,
    reusable: Callable[[Cluster, dict], bool] | None = None,
) -> RunResult:
    """Run ``work`` over the partitions of ``source`` not yet complete in ``output``.

    ``describe(record)`` turns one partition record into the manifest's description of
    the output (model, analyzer, schema); ``finalize(output_dir)``, when given, adds
    whole-output results (e.g. correlations) once every partition is written.
    ``extra_cols``, ``text_flag`` and ``text_is_string`` are passed to
    :func:`~kbatch.io.reader.plan_input`. With ``check_duplicate_ids`` and an id column,
    the output's ``id`` column is checked for repeats. ``started`` (a ``perf_counter``
    time) lets a command that did work before, such as embedding, count it in the total.
    ``reusable(cluster, part_metadata)`` keeps a complete partition only when it says so: for
    what is decided on the cluster, not in the params (``--precision auto``: fp16 on GPU
    workers, fp32 on CPU workers).
    """
    started = started if started is not None else time.perf_counter()
    plan = plan_input(source, options.text_col, options.id_col, options.partition_rows, extra_cols, text_flag, text_is_string)
    check_output_apart(output, source)
    params = {"command": command, "input": plan.fingerprint["paths_sha256"], "text_col": options.text_col,
              "id_col": options.id_col, "partition_rows": options.partition_rows, **params}
    key = params_key(params)
    parent = current_step.get()
    token = current_step.set(f"{parent}: {command}" if parent else command)  # e.g. "matches: embed" inside a job
    try:
        with output_lock(output):
            out = OutputDir(output)
            done = out.prepare(key, len(plan.pieces), options.overwrite)
            config = options.cluster if isinstance(options.cluster, ClusterConfig) else load_cluster_config(options.cluster)
            with connect(config, options.client, options.log) as connected, performance_report(options.report):
                verifying = time.perf_counter()
                done = unchanged_partitions(connected, plan.pieces, done, options.log, reusable)
                verifying = time.perf_counter() - verifying
                todo = [p for p in plan.pieces if p.index not in done]
                if todo:
                    out.start_writing()
                processing = time.perf_counter()
                records = work(connected, todo, out, key)
                processing = time.perf_counter() - processing
                start_seconds = connected.start_seconds
            partitions = sorted([r["partition"] for r in records] + [m["partition"] for m in done.values()], key=lambda p: p["index"])
            total = time.perf_counter() - started
            processed_rows = sum(r["partition"]["rows"] for r in records)
            manifest = {
                "command": command,
                "status": "complete",
                "params_key": key,
                "params": params,
                "input": {**plan.fingerprint, "sha256": combined_digest([p["input_digest"] for p in partitions])},
                **describe(records[0] if records else next(iter(done.values()))),
                "partitions_total": len(plan.pieces),
                "partitions_done": len(records),
                "partitions_reused": len(done),
                **totals(partitions),
                "errors": [e for p in partitions for e in p.get("errors", ())][:MAX_ERROR_EXAMPLES],
                "workers": sorted({str(p["worker"]) for p in partitions if p.get("worker") is not None}),
                **(id_problems(out.path, len(plan.pieces)) if options.id_col and check_duplicate_ids else NO_ID_PROBLEMS),
                "seconds": {"total": round(total, 3), "cluster_start": round(start_seconds, 3), "verify": round(verifying, 3),
                            "processing": round(processing, 3)},
                "throughput_rows_per_s": {
                    "total": round(processed_rows / total, 2) if total else 0.0,
                    "processing": round(processed_rows / processing, 2) if processing and processed_rows else 0.0,
                },
                **(finalize(out.path) if finalize else {}),
                "versions": versions(),
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            out.write_manifest(manifest)
            if manifest["duplicate_ids"]:
                repeated = f"{manifest['duplicate_ids']:,} rows repeat an id of column {options.id_col!r}"
                print(f"kbatch: warning: {repeated}; all were kept", file=options.log)
            if manifest["null_ids"]:
                print(f"kbatch: warning: {manifest['null_ids']:,} rows have no id (null in column {options.id_col!r}); all were kept",
                      file=options.log)
    finally:
        current_step.reset(token)
    return RunResult(str(out.path), manifest)


def partition_record(index: int, frame: pd.DataFrame, prepared: Prepared, **counts: int) -> dict:
    """What one finished partition reports: rows, the digest of its input rows, skip reasons,
    counts, stage seconds, worker."""
    return {
        "index": index,
        "rows": len(frame),
        "input_digest": prepared.input_digest,
        "skipped": {str(k): int(v) for k, v in frame["skip_reason"].value_counts().items()},
        "counts": {name: int(n) for name, n in counts.items()},
        "seconds": prepared.seconds,
        "worker": _worker_name(),
    }


def _worker_name() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().name)
    except ValueError:
        return None


def id_problems(directory: Path, n_partitions: int) -> dict[str, int]:
    """Rows of the output whose ``id`` repeats another row's, and rows with no id at all."""
    ids = pa.concat_arrays(
        [pq.read_table(directory / part_name(i), columns=["id"]).column("id").combine_chunks() for i in range(n_partitions)]
    )
    present = ids.drop_null()
    return {"duplicate_ids": len(present) - len(present.unique()), "null_ids": ids.null_count}


def unchanged_partitions(cluster: Cluster, pieces: Sequence[Piece], done: dict[int, dict], log: TextIO,
                         reusable: Callable[[Cluster, dict], bool] | None = None) -> dict[int, dict]:
    """The complete partitions whose input rows are still those they were made from (and that
    ``reusable`` accepts).

    Workers re-read and hash each one (sizes and dates prove nothing: an edit can keep
    both); a partition whose rows changed, or that records no digest, is computed again.
    """
    if reusable is not None:
        kept = {index: meta for index, meta in done.items() if reusable(cluster, meta)}
        if len(kept) < len(done):
            print(f"kbatch: {len(done) - len(kept):,} complete partitions were made with other settings on another cluster "
                  "(precision); computing them again", file=log)
        done = kept
    checked = [p for p in pieces if p.index in done]
    if not checked:
        return done
    run = uuid.uuid4().hex[:8]
    digests = cluster.client.gather(cluster.client.map(
        piece_digest, checked, key=[f"kbatch-verify-{run}-{p.index}" for p in checked], resources=cluster.routing.cpu,
    ))
    unchanged = {p.index: done[p.index] for p, digest in zip(checked, digests, strict=True)
                 if done[p.index]["partition"].get("input_digest") == digest}
    if len(unchanged) < len(done):
        print(f"kbatch: {len(done) - len(unchanged):,} of {len(done):,} complete partitions were made from input rows that "
              "have changed since; computing them again", file=log)
    return unchanged


def check_output_apart(output: str | os.PathLike[str], source) -> None:
    """Refuse an output that would mix with its input: part files among the input files (a
    later run would read them as input, ``--overwrite`` would delete input files named like
    them), or where the input's glob would read them."""
    out = Path(output).resolve()
    for file in find_input_files(source):
        if file.resolve().parent == out:
            raise OutputConflictError(f"output {output} is the directory of input file {file}; choose an output directory apart")
    patterns = source if isinstance(source, (list, tuple)) else [source]
    for pattern in map(str, patterns):
        if any(ch in pattern for ch in "*?[") and Path(out / part_name(0)).match(os.path.abspath(pattern)):
            raise OutputConflictError(f"output {output} would be read by the input pattern {pattern!r}; choose an output directory apart")


@contextmanager
def connect(config: ClusterConfig, client, log) -> Iterator[Cluster]:
    """The cluster to run on: ``client``'s when given, else one started from ``config``."""
    if client is None:
        with open_cluster(config, log=log) as cluster:
            yield cluster
        return
    workers = client.scheduler_info(n_workers=-1)["workers"]
    torch_threads = config.torch_threads if config.torch_threads != "auto" else None
    yield Cluster(client, Routing.from_workers(workers, torch_threads), client.dashboard_link, 0.0)


def performance_report(path):
    """A Dask performance report written to ``path`` around the work, or nothing."""
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return performance_report(filename=str(path))
