"""Stopwords: content morphemes too common to mean anything (것, 수, 등, 영화 is not one).

kbatch ships a list (``kbatch/data/stopwords-ko.txt``); ``--stopwords FILE`` replaces it
and ``--stopwords none`` turns it off. Stopwords apply to content morphemes only
(:data:`~kbatch.analyzers.tags.CONTENT` and nouns): which function morphemes to keep is
what ``--pos`` is for.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from kbatch.errors import InputError

BUILTIN = "builtin"


def load_stopwords(source: str | os.PathLike[str] | None = BUILTIN) -> frozenset[str]:
    """``builtin``, ``none`` (or ``None``) or a UTF-8 file with one word per line (``#`` comments)."""
    if source is None or str(source) == "none":
        return frozenset()
    if str(source) == BUILTIN:
        text = resources.files("kbatch").joinpath("data/stopwords-ko.txt").read_text(encoding="utf-8")
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError):
            raise InputError(f"`stopwords` {source}: no such file (or use 'builtin' or 'none')") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"`stopwords` {source}: not UTF-8 (byte {exc.start})") from None
    return frozenset(word for line in text.splitlines() for word in line.split("#", 1)[0].split())
