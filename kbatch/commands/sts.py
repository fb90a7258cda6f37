"""``kbatch sts`` and ``kbatch evaluate``: cosine similarity of sentence pairs, and how well it
ranks like human scores (Pearson and Spearman × 100, as KorSTS and KLUE-STS report them).

Each partition's two sentence columns are stacked into one column, so the normalize,
subword and encode stages of ``embed`` run unchanged; the cosine is taken after encoding.

>>> sts("../shared/data/korsts/sts-test.tsv", "out/sts", gold="score").manifest["metrics"]   # doctest: +SKIP
{'pairs': 1379, 'pearson': 41.6, 'spearman': 42.2}
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.commands.embed import check_options, embedding_params, make_encode
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import RunOptions, partition_record, run_command
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Prepared, run_partitions, run_stages
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece, read_piece
from kbatch.io.writer import OutputDir, PartitionWriter
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages import Encode, NormalizeText, SubwordTokenize
from kbatch.stages.base import Stage
from kbatch.stages.encode import vector_matrix


def sts(
    source,
    output: str | os.PathLike[str],
    *,
    col1: str = "sentence1",
    col2: str = "sentence2",
    gold: str | None = None,
    model: str = DEFAULT_MODEL,
    trust_remote_code: bool = False,
    quantize: str | None = None,
    token_budget: int | None = None,
    **options,
) -> RunResult:
    """Score every pair of ``col1``/``col2`` by the cosine of their embeddings.

    Writes ``id, score`` (plus ``gold`` as float when given, and then Pearson and Spearman
    in the manifest). ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`.
    """
    check_options("float32", None, quantize, token_budget)
    spec = resolve_model(model, trust_remote_code=trust_remote_code)
    params = {"col2": col2, "gold": gold, **embedding_params(spec, None, True, "float32", quantize)}

    def work(cluster: Cluster, pieces: Sequence[Piece], out: OutputDir, key: str) -> list[dict]:
        encode = make_encode(cluster, spec, None, True, "float32", quantize, token_budget)
        metadata = {"params": key, "model": spec.describe(), "quantize": quantize}
        stages = (NormalizeText(), SubwordTokenize.for_model(spec))
        return run_partitions(
            cluster, pieces, prepare=prepare_pairs, prepare_args=(col1, col2, gold, run.id_col, stages),
            finish=score_and_write, finish_args=(encode, PartitionWriter(str(out.path)), metadata, gold), progress=run.progress,
        )

    def describe(record: dict) -> dict:
        return {"model": {**spec.describe(), "dimension": record["dimension"]}, "output_schema": {"score": "float32"}}

    run = RunOptions(**{**options, "text_col": col1})
    extra = [(col2, "--col2")] + ([(gold, "--gold")] if gold else [])
    finalize = (lambda path: {"metrics": correlations(path, gold_column(gold))}) if gold else None
    return run_command("sts", source, output, params, run, work, describe, extra_cols=extra, text_flag="--col1", finalize=finalize)


def evaluate(
    source, *, col1: str = "sentence1", col2: str = "sentence2", gold: str = "score", model: str = DEFAULT_MODEL, **options
) -> dict:
    """Pearson and Spearman (× 100) of a model's cosine scores against gold scores; ``options``
    (``trust_remote_code`` among them) go to :func:`sts`."""
    with tempfile.TemporaryDirectory(prefix="kbatch-evaluate-") as scratch:
        result = sts(source, Path(scratch) / "sts", col1=col1, col2=col2, gold=gold, model=model, **options)
    return {"model": result.manifest["model"]["name"], **result.manifest["metrics"]}


def prepare_pairs(
    piece: Piece, col1: str, col2: str, gold: str | None, id_col: str | None, stages: Sequence[Stage]
) -> Prepared:
    """Read a partition of pairs and run the CPU stages on both sentences, stacked."""
    start = time.perf_counter()
    pairs = read_piece(piece, col1, id_col, (col2,) + ((gold,) if gold else ()))
    seconds = {"read": time.perf_counter() - start}
    both = pd.DataFrame({"id": np.arange(2 * len(pairs)), "text": pd.concat([pairs["text"], pairs[col2]], ignore_index=True)})
    return Prepared((pairs, run_stages(both, stages, seconds)), seconds, piece_digest(piece))


def score_and_write(
    prepared: Prepared, index: int, encode: Encode, writer: PartitionWriter,
    metadata: dict, gold: str | None,
) -> dict:
    """Encode both sentences, take the cosine of each pair, write ``id, score[, gold]``."""
    (pairs, both), seconds = prepared.data, prepared.seconds
    start = time.perf_counter()
    both = encode(both)
    seconds["Encode"] = time.perf_counter() - start
    vectors, has_vector = vector_matrix(pa.array(both["embedding"]))
    n = len(pairs)
    missing = ~has_vector
    scores = np.einsum("ij,ij->i", vectors[:n], vectors[n:]).astype(np.float32)
    columns = {"id": pa.array(pairs["id"]), "score": pa.array(scores, mask=missing[:n] | missing[n:])}
    if gold:
        columns[gold_column(gold)] = pa.array(pd.to_numeric(pairs[gold], errors="coerce").to_numpy(dtype=np.float64), from_pandas=True)
    reasons = both["skip_reason"].to_numpy()
    pairs = pairs.assign(skip_reason=np.where(pd.notna(reasons[:n]), reasons[:n], reasons[n:]))
    partition = partition_record(index, pairs, prepared, pairs_scored=int((~(missing[:n] | missing[n:])).sum()))
    record = {**metadata, **encode.describe(), "partition": partition}
    writer.write(index, pa.table(columns), record)
    return record


def gold_column(gold: str) -> str:
    """The gold column's name in the output: its own, unless that is ``id`` or ``score``."""
    return f"gold_{gold}" if gold in ("id", "score") else gold


def correlations(directory: Path, gold: str) -> dict:
    """Pearson and Spearman × 100 between ``score`` and ``gold`` over pairs that have both."""
    frame = pq.read_table(directory, columns=["score", gold]).to_pandas().dropna()
    if len(frame) < 2:
        return {"pairs": len(frame), "pearson": None, "spearman": None}
    scores, truth = frame["score"].astype(np.float64), frame[gold]
    pearson = float(np.corrcoef(scores, truth)[0, 1])
    spearman = float(np.corrcoef(scores.rank(), truth.rank())[0, 1])
    return {"pairs": len(frame), "pearson": round(pearson * 100, 4), "spearman": round(spearman * 100, 4)}
