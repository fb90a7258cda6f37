"""Morphological analysis on CPU workers: ``tokens`` and ``tags`` as Arrow list columns.

Before any analyzer sees a text, the text is made safe for it: rows without text are
skipped (one analyzer segfaults on None, another hangs on whitespace), long texts are
cut into chunks at sentence or word boundaries (several analyzers are quadratic in
length), and characters outside the BMP are blanked for the analyzers that reject them.
A text the analyzer still fails on is recorded as ``analyzer_error``; its partition goes on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers import AnalyzerSpec, load_analyzer
from kbatch.analyzers.tags import CONTENT, NOUNS, TAGS
from kbatch.stages.base import Stage

# Chunks of at most this many characters: no measured analyzer is slow on them, and
# a chunk this long still holds whole sentences.
MAX_CHUNK_CHARS = 1000
ANALYZER_ERROR = "analyzer_error"

_OUTSIDE_BMP = re.compile("[\U00010000-\U0010ffff]")
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
    adds = ("tokens", "tags", "analyzer_error")

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        analyzer = load_analyzer(self.analyzer)
        rows = np.flatnonzero(frame["skip_reason"].isna().to_numpy())
        texts = frame["text"].to_numpy()[rows]
        if analyzer.bmp_only:
            texts = np.array([_OUTSIDE_BMP.sub(" ", t).strip() for t in texts], dtype=object)
        chunks, chunk_row = _chunked(texts, rows)
        analysis = analyzer.analyze(chunks)
        morphemes = analysis.morphemes
        row_of = chunk_row[morphemes.text_index]
        keep = self._selected(morphemes.forms, morphemes.tags)
        errors = np.full(len(frame), None, dtype=object)
        for chunk, message in analysis.failures.items():
            errors[chunk_row[chunk]] = message
        failed = pd.notna(errors)
        null = frame["skip_reason"].notna().to_numpy() | failed
        counts = np.bincount(row_of[keep], minlength=len(frame))
        counts[null] = 0
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        keep_morphemes = keep & ~failed[row_of]
        mask = pa.array(null)
        out = frame.copy()
        for column, values in (("tokens", morphemes.forms), ("tags", morphemes.tags)):
            lists = pa.ListArray.from_arrays(offsets, values.filter(pa.array(keep_morphemes)), mask=mask)
            out[column] = pd.Series(pd.arrays.ArrowExtensionArray(lists), index=frame.index)
        out["analyzer_error"] = pd.Series(errors, index=frame.index, dtype=object)
        out.loc[failed, "skip_reason"] = ANALYZER_ERROR
        return out

    def _selected(self, forms: pa.Array, tags: pa.Array) -> np.ndarray:
        keep = pc.is_in(tags, pa.array(sorted(self.pos))).to_numpy(zero_copy_only=False)
        if self.stopwords:
            stop = pc.and_(pc.is_in(forms, pa.array(sorted(self.stopwords))), pc.is_in(tags, pa.array(sorted(NOUNS | CONTENT))))
            keep &= ~stop.to_numpy(zero_copy_only=False)
        return keep


def _chunked(texts: Sequence[str], rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Texts as analyzer inputs (long ones cut, blank ones dropped) and the frame row of each."""
    if not len(texts):
        return [], rows
    lengths = pc.utf8_length(pa.array(texts, pa.string())).to_numpy(zero_copy_only=False)
    if not (lengths > MAX_CHUNK_CHARS).any() and all(t.strip() for t in texts):
        return list(texts), rows
    chunks: list[str] = []
    owners: list[int] = []
    for row, text in zip(rows, texts, strict=True):
        pieces = split_chunks(text)
        chunks.extend(pieces)
        owners.extend([row] * len(pieces))
    return chunks, np.array(owners, dtype=np.int64)
