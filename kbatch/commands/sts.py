"""``kbatch sts`` and ``kbatch evaluate``: cosine similarity of sentence pairs, and how well it
ranks like human scores (Pearson and Spearman × 100, as KorSTS and KLUE-STS report them).

Each partition's two sentence columns are stacked into one column, so the normalize,
subword and encode stages of ``embed`` run unchanged; the cosine is taken after encoding.

>>> metrics = sts("examples/korsts/sts-dev.tsv", "out/sts", gold="score", progress=False).manifest["metrics"]
>>> metrics["pairs"], metrics["spearman"] > 70
(1500, True)
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.commands.embedding import Embedding
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import Partitioned, RunOptions, run_partitioned
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Pipeline
from kbatch.io import storage
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages.base import Stage
from kbatch.stages.pairs import PairCosine, StackPairs
from kbatch.stages.read import ReadText


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
    prompt: str | None = None,
    **options,
) -> RunResult:
    """Score every pair of ``col1``/``col2`` by the cosine of their embeddings, both sentences
    with the same ``prompt`` (None: the model's default, ``"none"``: no prompt).

    Writes ``id, score`` (plus ``gold`` as float when given, and then Pearson and Spearman
    in the manifest). ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`.
    """
    settings = Embedding(resolve_model(model, trust_remote_code=trust_remote_code), quantize=quantize, token_budget=token_budget,
                         prompt=prompt)
    params = {"col2": col2, "gold": gold, **settings.params()}
    run = RunOptions(**{**options, "text_col": col1})
    extra = (col2,) + ((gold,) if gold else ())

    def pipeline(cluster: Cluster) -> tuple[Pipeline, dict]:
        stages = (*([GoldScores(gold)] if gold else []), StackPairs(col2), settings.stage(cluster), PairCosine())
        writes = ("id", "score", *([gold_column(gold)] if gold else []))
        return Pipeline(ReadText(col1, run.id_col, extra), stages, writes), {"model": settings.describe_model(), "quantize": quantize}

    def describe(record: dict) -> dict:
        return {"model": {**settings.describe_model(), "dimension": record["dimension"]}}

    finalize = (lambda path: {"metrics": correlations(path, gold_column(gold))}) if gold else None
    checked = ((col2, "col2"),) + (((gold, "gold"),) if gold else ())
    command = Partitioned("sts", params, pipeline, describe, finalize, extra_cols=checked, text_param="col1")
    return run_partitioned(command, source, output, run)


def evaluate(
    source, *, col1: str = "sentence1", col2: str = "sentence2", gold: str = "score", model: str = DEFAULT_MODEL, **options
) -> dict:
    """Pearson and Spearman (× 100) of a model's cosine scores against gold scores; ``options``
    (``trust_remote_code`` among them) go to :func:`sts`."""
    with tempfile.TemporaryDirectory(prefix="kbatch-evaluate-") as scratch:
        result = sts(source, Path(scratch) / "sts", col1=col1, col2=col2, gold=gold, model=model, **options)
    return {"model": result.manifest["model"]["name"], **result.manifest["metrics"]}


@dataclass(frozen=True)
class GoldScores(Stage):
    """Adds the gold column as float64 under its output name (unparseable scores are null)."""

    gold: str

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.gold,)

    @property
    def outputs(self) -> dict[str, pa.DataType]:
        return {gold_column(self.gold): pa.float64()}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{gold_column(self.gold): pd.to_numeric(frame[self.gold], errors="coerce").astype("float64")})


def gold_column(gold: str) -> str:
    """The gold column's name in the output: its own, unless that is ``id`` or ``score``."""
    return f"gold_{gold}" if gold in ("id", "score") else gold


def correlations(directory: str, gold: str) -> dict:
    """Pearson and Spearman × 100 between ``score`` and ``gold`` over pairs that have both."""
    frame = storage.read_table(directory, ["score", gold]).to_pandas().dropna()
    if len(frame) < 2:
        return {"pairs": len(frame), "pearson": None, "spearman": None}
    scores, truth = frame["score"].astype(np.float64), frame[gold]
    pearson = float(np.corrcoef(scores, truth)[0, 1])
    spearman = float(np.corrcoef(scores.rank(), truth.rank())[0, 1])
    return {"pairs": len(frame), "pearson": round(pearson * 100, 4), "spearman": round(spearman * 100, 4)}
