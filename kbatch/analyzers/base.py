"""The analyzer interface: a batch of texts in, flat morpheme arrays out.

Analyzers return one flat array of forms and one of tags plus the index of the text
each morpheme came from, so a partition's results become Arrow list columns without
building millions of small Python tuples, and a failure of one text is recorded
instead of losing the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

from kbatch.analyzers.tags import unify_tags


@dataclass(frozen=True)
class Morphemes:
    """Morphemes of a batch of texts: ``text_index[i]`` is the text ``forms[i]`` came from."""

    text_index: np.ndarray
    forms: pa.Array
    tags: pa.Array

    def __len__(self) -> int:
        return len(self.text_index)


@dataclass(frozen=True)
class Analysis:
    """What an analyzer made of a batch: morphemes with unified tags, and per-text failures."""

    morphemes: Morphemes
    failures: dict[int, str]


class Analyzer(ABC):
    """One analyzer instance per worker process; see :func:`kbatch.analyzers.load_analyzer`."""

    name: ClassVar[str]
    # Komoran and Kkma fail on any text holding a character outside the BMP (emoji).
    bmp_only: ClassVar[bool] = False

    @abstractmethod
    def analyze(self, texts: Sequence[str]) -> Analysis:
        """Morphemes of every text; a text the analyzer rejects is a failure, not an exception."""


class PairAnalyzer(Analyzer):
    """An analyzer whose library returns ``(form, tag)`` pairs per text."""

    @abstractmethod
    def pos(self, text: str) -> Iterable[tuple[str, str]]:
        """The ``(form, tag)`` pairs of one text, in the library's own tags."""

    def pos_batch(self, texts: Sequence[str]) -> Iterable[Iterable[tuple[str, str]]]:
        """Pairs for many texts; libraries with a batch API override this."""
        return map(self.pos, texts)

    def analyze(self, texts: Sequence[str]) -> Analysis:
        failures: dict[int, str] = {}
        try:
            results = [list(pairs) for pairs in self.pos_batch(texts)]
        except Exception:
            results = []
            for i, text in enumerate(texts):
                try:
                    results.append(list(self.pos(text)))
                except Exception as exc:
                    failures[i] = f"{type(exc).__name__}: {exc}"[:200]
                    results.append([])
        counts = np.fromiter((len(pairs) for pairs in results), dtype=np.int64, count=len(results))
        forms = pa.array([form for pairs in results for form, _ in pairs], pa.string())
        tags = pa.array([tag for pairs in results for _, tag in pairs], pa.string())
        index = np.repeat(np.arange(len(results), dtype=np.int64), counts)
        return Analysis(Morphemes(index, forms, unify_tags(self.name, tags)), failures)
