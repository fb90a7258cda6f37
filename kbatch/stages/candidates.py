"""Keyword candidates: n-grams of adjacent morphemes of the wanted parts of speech.

With nouns, ``배송 상태`` (two adjacent nouns in ``배송상태가 좋아요``) is a candidate, but two
nouns separated by a particle or verb are not joined: a compound, not any two nouns.
A noise morpheme (jamo such as ㄷ, tagged a noun; anything the analyzer did not know) is
never part of one (:mod:`kbatch.analyzers.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
import pyarrow as pa

from kbatch.analyzers.noise import is_noise
from kbatch.stages.base import ColumnType, Stage


def morpheme_ngrams(tokens, tags, keep: frozenset[str], stopwords: frozenset[str], max_n: int) -> list[str]:
    """Distinct n-grams (1..``max_n``) within runs of kept morphemes, in order of first appearance."""
    found: dict[str, None] = {}
    run: list[str] = []
    for form, tag in zip([*tokens, ""], [*tags, ""], strict=True):
        if tag in keep and form not in stopwords and not is_noise(form, tag):
            run.append(form)
            continue
        for n in range(1, max_n + 1):
            for start in range(len(run) - n + 1):
                found.setdefault(" ".join(run[start : start + n]))
        run = []
    return list(found)


@dataclass(frozen=True)
class KeywordCandidates(Stage):
    """Adds ``candidates`` (list<string>; null where the text was skipped) from ``tokens`` and ``tags``."""

    keep: frozenset[str]
    stopwords: frozenset[str]
    max_n: int

    needs = ("tokens", "tags")
    outputs: ClassVar[dict[str, ColumnType]] = {"candidates": pa.list_(pa.string())}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        lists = [
            None if tokens is None else morpheme_ngrams(tokens, tags, self.keep, self.stopwords, self.max_n)
            for tokens, tags in zip(pa.array(frame["tokens"]).to_pylist(), pa.array(frame["tags"]).to_pylist(), strict=True)
        ]
        out = frame.copy(deep=False)
        out["candidates"] = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(lists, pa.list_(pa.string()))), index=frame.index)
        return out
