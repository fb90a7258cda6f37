"""Rank each document's keyword candidates by cosine to the document, diversified by MMR
(KeyBERT's method), on the worker that holds the encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.stages.base import GPU, ColumnType, Stage
from kbatch.stages.embed import Embed
from kbatch.vectors.columns import vector_matrix
from kbatch.vectors.mmr import mmr


@dataclass(frozen=True)
class RankKeywords(Stage):
    """Adds ``keywords`` (list<string>) and ``scores`` (list<float32>): the ``top_n`` candidates
    per document; each distinct candidate of the partition is embedded once, by ``embed``."""

    embed: Embed
    top_n: int
    diversity: float

    needs = ("embedding", "candidates")
    outputs: ClassVar[dict[str, ColumnType]] = {"keywords": pa.list_(pa.string()), "scores": pa.list_(pa.float32())}
    resource = GPU

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        return {"candidates": len(pc.unique(pc.list_flatten(pa.array(frame["candidates"])))),
                "keywords": pc.sum(pc.list_value_length(pa.array(frame["keywords"]))).as_py() or 0}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        documents, _ = vector_matrix(pa.array(frame["embedding"]))
        candidates = pa.array(frame["candidates"])
        flat = pc.list_flatten(candidates)
        distinct = pc.unique(flat).to_pylist()
        vectors = self.embed.strings(distinct) if distinct else np.zeros((0, documents.shape[1]), np.float32)
        where = pc.index_in(flat, value_set=pa.array(distinct, pa.string())).to_numpy()
        offsets = candidates.offsets.to_numpy()
        words, scores = [], []
        for row, valid in enumerate(candidates.is_valid().to_numpy(zero_copy_only=False)):
            if not valid:
                words.append(None)
                scores.append(None)
                continue
            own = where[offsets[row] : offsets[row + 1]]
            chosen, score = mmr(documents[row], vectors[own], self.top_n, self.diversity)
            words.append([distinct[i] for i in own[chosen]])
            scores.append(score.astype(np.float32))
        return frame.assign(keywords=pd.arrays.ArrowExtensionArray(pa.array(words, pa.list_(pa.string()))),
                            scores=pd.arrays.ArrowExtensionArray(pa.array(scores, pa.list_(pa.float32()))))
