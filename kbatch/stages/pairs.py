"""Sentence pairs through the embedding stages: stacked into one text column, encoded as
documents are, and scored by the cosine of each pair's two vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.stages.base import GPU, ColumnType, Stage
from kbatch.vectors.columns import vector_matrix


@dataclass(frozen=True)
class StackPairs(Stage):
    """Turns n pairs into 2n rows: ``text`` then ``second`` as ``text``; other columns repeat."""

    second: str

    keeps_rows = False

    @property
    def needs(self) -> tuple[str, ...]:
        return ("text", self.second)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        rest = frame.drop(columns=[self.second])
        return pd.concat([rest, rest.assign(text=frame[self.second])], ignore_index=True)


@dataclass(frozen=True)
class PairCosine(Stage):
    """Turns the 2n stacked rows back into n pairs with ``score`` (float32, null when either
    side has no vector) and the first side's ``skip_reason``, else the second's."""

    needs = ("embedding", "skip_reason")
    outputs: ClassVar[dict[str, ColumnType]] = {"score": pa.float32(), "skip_reason": pa.string()}
    drops = ("embedding",)
    resource = GPU
    keeps_rows = False

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        return {"pairs_scored": int(frame["score"].notna().sum())}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        n = len(frame) // 2
        vectors, has_vector = vector_matrix(pa.array(frame["embedding"]))
        scores = np.einsum("ij,ij->i", vectors[:n], vectors[n:]).astype(np.float32)
        reasons = frame["skip_reason"].to_numpy(dtype=object)
        pairs = frame.iloc[:n].drop(columns=["embedding"]).reset_index(drop=True)
        pairs["score"] = pd.Series(pa.array(scores, mask=~(has_vector[:n] & has_vector[n:])).to_pandas(), dtype="float32")
        pairs["skip_reason"] = np.where(pd.notna(reasons[:n]), reasons[:n], reasons[n:])
        return pairs
