"""``kbatch embed``: read → normalize → subword-tokenize (CPU) → encode → write.

>>> result = embed("examples/reviews.parquet", "out/emb")      # doctest: +SKIP
>>> result.manifest["rows_done"]                                # doctest: +SKIP
2000
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import RunOptions, partition_record, run_command
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Prepared, run_partitions
from kbatch.errors import InputError, ModelError
from kbatch.io.reader import Piece
from kbatch.io.writer import OutputDir, PartitionWriter
from kbatch.models.encoders import POOLING_MODES, PRECISIONS, EncoderSettings, int8_model_path
from kbatch.models.resolve import DEFAULT_MODEL, ModelSpec, is_transformer, resolve_model
from kbatch.stages import Encode, NormalizeText, SubwordTokenize
from kbatch.stages.encode import DTYPES, vector_matrix
from kbatch.vectors.cache import EmbeddingCache, text_hashes


def embed(
    source,
    output: str | os.PathLike[str],
    *,
    model: str = DEFAULT_MODEL,
    trust_remote_code: bool = False,
    normalize: bool = True,
    dtype: str = "float32",
    pooling: str | None = None,
    quantize: str | None = None,
    token_budget: int | None = None,
    precision: str = "auto",
    cache: str | os.PathLike[str] | None = None,
    **options,
) -> RunResult:
    """Embed the ``text_col`` of every row of ``source`` into Parquet files under ``output``.

    ``precision`` is ``fp32``, ``fp16``, ``bf16`` or ``auto`` (fp16 on GPU workers, fp32 on
    CPU). ``cache`` is an embedding cache directory (:mod:`kbatch.vectors.cache`): texts it holds
    for this model and precision are not encoded again, and new ones are added.
    ``trust_remote_code`` lets the model folder run its own code (refused otherwise).

    ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`: ``text_col``, ``id_col``,
    ``partition_rows``, ``overwrite``, ``cluster`` (a :class:`ClusterConfig` or a
    cluster.yaml path), ``client`` (a connected ``distributed.Client`` to reuse),
    ``report``, ``progress`` and ``log``.
    """
    check_options(dtype, pooling, quantize, token_budget, precision)
    spec = resolve_model(model, trust_remote_code=trust_remote_code)
    params = {**embedding_params(spec, pooling, normalize, dtype, quantize), "precision": precision}

    def work(cluster: Cluster, pieces: Sequence[Piece], out: OutputDir, key: str) -> list[dict]:
        encode = make_encode(cluster, spec, pooling, normalize, dtype, quantize, token_budget, precision)
        metadata = {"params": key, "model": spec.describe(), "normalize": normalize, "dtype": dtype,
                    "max_seq_length": spec.max_seq_length, "quantize": quantize, "precision": encode.settings.precision}
        stages = (NormalizeText(), SubwordTokenize.for_model(spec))
        cached = EmbeddingCache.open(cache, {**params, "precision": encode.settings.precision}) if cache is not None else None
        return run_partitions(
            cluster, pieces, prepare_args=(options_.text_col, options_.id_col, stages),
            finish=encode_and_write, finish_args=(encode, PartitionWriter(str(out.path)), metadata, cached), progress=options_.progress,
        )

    def describe(record: dict) -> dict:
        return {
            "model": {**spec.describe(), "dimension": record["dimension"], "pooling": record["pooling"],
                      "max_seq_length": spec.max_seq_length},
            "output_schema": {"embedding": f"fixed_size_list<{dtype}>[{record['dimension']}]"},
        }

    def same_precision(cluster: Cluster, part: dict) -> bool:
        return part.get("precision") == resolved_precision(precision, cluster)

    options_ = RunOptions(**options)
    return run_command("embed", source, output, params, options_, work, describe, reusable=same_precision)


def encode_and_write(
    prepared: Prepared, index: int, encode: Encode, writer: PartitionWriter, metadata: dict,
    cache: EmbeddingCache | None = None,
) -> dict:
    """The finishing task of one partition: encode (what the cache lacks), write atomically, report counts."""
    frame, seconds = prepared.data, prepared.seconds
    start = time.perf_counter()
    counts = {}
    if cache is None:
        frame = encode(frame)
    else:
        frame, counts = encode_with_cache(frame, encode, cache)
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
    partition = partition_record(index, frame, prepared, truncated=frame["truncated"].sum(), tokens=frame["n_tokens"].sum(), **counts)
    record = {**metadata, **encode.describe(), "partition": partition}
    writer.write(index, table, record)
    seconds["write"] = time.perf_counter() - start
    return record


def encode_with_cache(frame: pd.DataFrame, encode: Encode, cache: EmbeddingCache) -> tuple[pd.DataFrame, dict[str, int]]:
    """Vectors from the cache where it has the normalized text, encoded (and added to it) where not."""
    rows = np.flatnonzero(frame["skip_reason"].isna().to_numpy())
    hashes = text_hashes(frame["text"].to_numpy()[rows].tolist())
    found, cached = cache.lookup(hashes)
    missing = rows[~found]
    fresh = encode.raw(frame.iloc[missing])
    cache.add(hashes[~found], fresh)
    vectors = np.zeros((len(frame), fresh.shape[1]), dtype=np.float32)
    if found.any():
        vectors[rows[found]] = cached
    vectors[missing] = fresh
    return encode.with_vectors(frame, vectors), {"cache_hits": int(found.sum()), "cache_misses": len(missing)}


def embedding_params(spec: ModelSpec, pooling: str | None, normalize: bool, dtype: str, quantize: str | None) -> dict:
    """The parameters that make two sets of vectors comparable (part of every params key)."""
    return {"model": spec.fingerprint, "pooling": pooling, "normalize": normalize, "dtype": dtype, "quantize": quantize}


def make_encode(
    cluster: Cluster, spec: ModelSpec, pooling: str | None, normalize: bool, dtype: str, quantize: str | None, token_budget: int | None,
    precision: str = "auto",
) -> Encode:
    """The Encode stage for ``spec`` on this cluster (exporting the int8 model on a worker first if asked);
    ``precision="auto"`` is fp16 when encoding goes to GPU workers, else fp32."""
    onnx_path = None
    if quantize == "int8":
        if not is_transformer(spec.path):
            raise ModelError(f"--quantize int8 exports a transformer to ONNX; {spec.name} is not one (it is fast on CPU as it is)")
        exported = cluster.client.submit(int8_model_path, spec.path, spec.fingerprint, spec.trust_remote_code,
                                         resources=cluster.routing.encode, pure=False)
        onnx_path = exported.result()
    settings = EncoderSettings(spec.path, pooling, onnx_path, cluster.routing.torch_threads,
                               precision=resolved_precision(precision, cluster), trust_remote_code=spec.trust_remote_code)
    return Encode(settings, token_budget=token_budget, normalize=normalize, dtype=dtype)


def resolved_precision(precision: str, cluster: Cluster) -> str:
    """``auto`` is fp16 when encoding goes to GPU workers, else fp32; others as given."""
    if precision != "auto":
        return precision
    return "fp16" if cluster.routing.encode == {"GPU": 1} else "fp32"


def check_options(dtype: str, pooling: str | None, quantize: str | None, token_budget: int | None, precision: str = "auto") -> None:
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if pooling is not None and pooling not in POOLING_MODES:
        raise InputError(f"--pooling must be one of {', '.join(POOLING_MODES)}, got {pooling!r}")
    if quantize not in (None, "int8"):
        raise InputError(f"--quantize supports only int8, got {quantize!r}")
    if token_budget is not None and token_budget < 1:
        raise InputError(f"--token-budget must be positive, got {token_budget}")
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if quantize and precision not in ("auto", "fp32"):
        raise InputError("--quantize int8 runs its own int8 model: leave --precision at auto or fp32")


def encode_strings(texts: Sequence[str], subword: SubwordTokenize, encode: Encode) -> np.ndarray:
    """Vectors of short strings (candidate words) on a worker, through the same stages as documents."""
    frame = pd.DataFrame({"id": np.arange(len(texts)), "text": list(texts), "skip_reason": [None] * len(texts)})
    return vector_matrix(pa.array(encode(subword(frame))["embedding"]))[0]
