"""Kiwi (``kiwipiepy``): the most accurate analyzer here, C++ with its own thread pool.

The pool is sized to the Dask worker's threads, so two workers on two cores never run
four analysis threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kbatch.analyzers.base import PairAnalyzer
from kbatch.analyzers.userdict import UserWord


class Kiwi(PairAnalyzer):
    name = "kiwi"

    def __init__(self, user_words: Sequence[UserWord] = (), threads: int = 1) -> None:
        import kiwipiepy

        self._kiwi = kiwipiepy.Kiwi(num_workers=max(1, threads))
        for word in user_words:
            self._kiwi.add_user_word(word.form, word.tag, 0.0)

    def pos(self, text: str) -> list[tuple[str, str]]:
        return [(token.form, token.tag) for token in self._kiwi.tokenize(text)]

    def pos_batch(self, texts: Sequence[str]) -> Iterable[list[tuple[str, str]]]:
        # Kiwi's batch API loses the rest of the batch after a bad text; the base class
        # then falls back to one text at a time.
        for tokens in self._kiwi.tokenize(list(texts)):
            yield [(token.form, token.tag) for token in tokens]
