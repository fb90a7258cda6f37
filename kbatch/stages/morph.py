"""Morphological analysis on CPU workers: ``tokens`` and ``tags`` as Arrow list columns.

Before any analyzer sees a text, the text is made safe for it: rows without text are
skipped (one analyzer segfaults on None, another hangs on whitespace), long texts are
cut into chunks at sentence or word boundaries (several analyzers are quadratic in
length), and characters outside the BMP are blanked for the analyzers that reject them.
A text the analyzer still fails on is recorded as ``analyzer_error``; its partition goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers import AnalyzerSpec, load_analyzer
from kbatch.analyzers.tags import CONTENT, NOUNS, TAGS
from kbatch.stages.base import ColumnType, Stage

# Chunks of at most this many characters: no measured analyzer is slow on them, and
# a chunk this long still holds whole sentences.
MAX_CHUNK_CHARS = 1000
ANALYZER_ERROR = "analyzer_error"
# Rows the analyzer failed on, quoted as examples in each partition's record.
ERROR_EXAMPLES = 5

_OUTSIDE_BMP = r"[\x{10000}-\x{10ffff}]"
_SENTENCE_END = re.compile(r"[.!?。！？…]+\s")


def split_chunks(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, after a sentence end if
    the window has one, else at its last space, else hard."""
    chunks = []
    while len(text) > limit:
        window = text[:limit]
        ends = list(_SENTENCE_END.finditer(window))
        cut = ends[-1].end() if ends else (window.rfind(" ") + 1 or limit)
        chunks.append(text[:cut].strip())
        text = text[cut:]
    chunks.append(text.strip())
    return [c for c in chunks if c]


@dataclass(frozen=True)
class MorphAnalyze(Stage):
    """Adds ``tokens`` and ``tags`` (list<string>, null for skipped rows) and ``analyzer_error``."""

    analyzer: AnalyzerSpec = field(default_factory=AnalyzerSpec)
    pos: frozenset[str] = TAGS
    stopwords: frozenset[str] = frozenset()

    needs = ("text", "skip_reason")
    outputs: ClassVar[dict[str, ColumnType]] = {"tokens": pa.list_(pa.string()), "tags": pa.list_(pa.string()), ANALYZER_ERROR: pa.string()}

    def setup(self) -> None:
        load_analyzer(self.analyzer)

    def loads(self) -> str | None:
        return self.analyzer.name

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        return {"morphemes": pc.sum(pc.list_value_length(pa.array(frame["tokens"]))).as_py() or 0}

    def errors(self, frame: pd.DataFrame) -> list[dict]:
        """The first rows the analyzer failed on (their ids and its messages)."""
        failed = frame[frame[ANALYZER_ERROR].notna()].head(ERROR_EXAMPLES)
        return [{"id": str(i), "error": e} for i, e in zip(failed["id"], failed[ANALYZER_ERROR], strict=True)]

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        analyzer = load_analyzer(self.analyzer)
        rows = np.flatnonzero(frame["skip_reason"].isna().to_numpy())
        texts = pa.array(frame["text"], pa.large_string(), from_pandas=True).take(pa.array(rows))
        if analyzer.bmp_only:
            texts = pc.utf8_trim_whitespace(pc.replace_substring_regex(texts, _OUTSIDE_BMP, " "))
        chunks, chunk_row = _chunked(texts, rows)
        analysis = analyzer.analyze(chunks)
        morphemes = analysis.morphemes
        row_of = chunk_row[morphemes.text_index]
        errors = np.full(len(frame), None, dtype=object)
        for chunk, message in analysis.failures.items():
            errors[chunk_row[chunk]] = message
        failed = pd.notna(errors)
        keep = self._selected(morphemes.forms, morphemes.tags) & ~failed[row_of]
        null = frame["skip_reason"].notna().to_numpy() | failed
        offsets = np.zeros(len(frame) + 1, dtype=np.int32)
        np.cumsum(np.bincount(row_of[keep], minlength=len(frame)), out=offsets[1:])
        out = frame.copy(deep=False)
        for column, values in (("tokens", morphemes.forms), ("tags", morphemes.tags)):
            lists = pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(keep)), mask=pa.array(null))
            out[column] = pd.Series(pd.arrays.ArrowExtensionArray(lists), index=frame.index)
        out["analyzer_error"] = pd.Series(errors, index=frame.index, dtype=object)
        out.loc[failed, "skip_reason"] = ANALYZER_ERROR
        return out

    def _selected(self, forms: pa.Array, tags: pa.Array) -> np.ndarray:
        if self.pos == TAGS:
            keep = np.ones(len(tags), dtype=bool)
        else:
            keep = pc.is_in(tags, pa.array(sorted(self.pos))).to_numpy(zero_copy_only=False)
        if self.stopwords:
            stop = pc.and_(pc.is_in(forms, pa.array(sorted(self.stopwords))), pc.is_in(tags, pa.array(sorted(NOUNS | CONTENT))))
            keep &= ~stop.to_numpy(zero_copy_only=False)
        return keep


def _chunked(texts: pa.Array, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Texts as analyzer inputs (long ones cut, blank ones dropped) and the frame row of each."""
    long_or_blank = pc.or_(pc.greater(pc.utf8_length(texts), MAX_CHUNK_CHARS), pc.equal(texts, ""))
    if not pc.any(long_or_blank).as_py():
        return texts.to_pylist(), rows
    chunks: list[str] = []
    owners: list[int] = []
    for row, text in zip(rows, texts.to_pylist(), strict=True):
        pieces = split_chunks(text)
        chunks.extend(pieces)
        owners.extend([row] * len(pieces))
    return chunks, np.array(owners, dtype=np.int64)
