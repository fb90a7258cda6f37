"""``kbatch embed``: read → normalize → subword-tokenize (CPU) → encode (GPU) → write.

>>> result = embed("examples/catalog.parquet", "out/emb", text_col="title", id_col="sku", progress=False)
>>> result.manifest["rows_done"], result.manifest["output_schema"]["embedding"]
(200, 'fixed_size_list<float32>[512]')
"""

from __future__ import annotations

import os

from kbatch.commands.embedding import Embedding
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import Partitioned, RunOptions, run_partitioned
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Pipeline
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages.read import ReadText
from kbatch.vectors.cache import EmbeddingCache

WRITES = ("id", "embedding", "n_tokens", "truncated")


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
    prompt: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    **options,
) -> RunResult:
    """Embed the ``text_col`` of every row of ``source`` into Parquet files under ``output``.

    ``precision`` is ``fp32``, ``fp16``, ``bf16`` or ``auto`` (fp16 on GPU workers, fp32 on
    CPU). ``cache`` is an embedding cache directory (:mod:`kbatch.vectors.cache`): texts it
    holds for this model, precision and prompt are not encoded again, and new ones are added.
    ``prompt`` names one of the model's prompts (e5's ``query``, ``passage``) put before every
    text: None is the model's default prompt, ``"none"`` no prompt.
    ``trust_remote_code`` lets the model folder run its own code (refused otherwise).

    ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`: ``text_col``,
    ``id_col``, ``partition_rows``, ``overwrite``, ``cluster`` (a :class:`ClusterConfig` or a
    cluster.yaml path), ``client`` (a connected ``distributed.Client`` to reuse),
    ``report``, ``progress`` and ``log``.
    """
    run = RunOptions(**options)
    settings = Embedding(resolve_model(model, trust_remote_code=trust_remote_code), pooling, normalize, dtype, quantize,
                         token_budget, precision, prompt)
    params = {**settings.params(), "precision": precision}
    spec = settings.spec

    def pipeline(cluster: Cluster) -> tuple[Pipeline, dict]:
        on_cluster = settings.precision_on(cluster)
        cached = EmbeddingCache.open(cache, {**params, "precision": on_cluster}) if cache is not None else None
        metadata = {"model": settings.describe_model(), "normalize": normalize, "dtype": dtype, "max_seq_length": spec.max_seq_length,
                    "quantize": quantize, "precision": on_cluster}
        return Pipeline(ReadText(run.text_col, run.id_col), (settings.stage(cluster, cached),), WRITES), metadata

    def describe(record: dict) -> dict:
        return {"model": {**settings.describe_model(), "dimension": record["dimension"], "pooling": record["pooling"],
                          "max_seq_length": spec.max_seq_length}}

    def same_precision(cluster: Cluster, part: dict) -> bool:
        return part.get("precision") == settings.precision_on(cluster)

    command = Partitioned("embed", params, pipeline, describe, reusable=same_precision)
    return run_partitioned(command, source, output, run)
