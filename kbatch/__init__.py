"""kbatch: Korean text corpora to embeddings, similarity, matches and topics on Dask.

The commands are importable from here; each is imported on first use (PEP 562), so
``import kbatch``, which the command line does for ``__version__``, loads neither torch nor
Dask. A script calling them needs ``if __name__ == "__main__":`` (the workers import it again).

>>> from kbatch import embed, evaluate
>>> embed.__module__, evaluate.__module__
('kbatch.commands.embed', 'kbatch.commands.sts')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> the module that defines it, imported when the name is first used.
_COMMANDS = {
    "dedup": "kbatch.commands.dedup",
    "embed": "kbatch.commands.embed",
    "evaluate": "kbatch.commands.sts",
    "keywords": "kbatch.commands.keywords",
    "match": "kbatch.commands.match",
    "sts": "kbatch.commands.sts",
    "tokenize": "kbatch.commands.tokenize",
    "topics": "kbatch.commands.topics",
    "train": "kbatch.commands.train",
}
__all__ = ["dedup", "embed", "evaluate", "keywords", "match", "sts", "tokenize", "topics", "train"]

if TYPE_CHECKING:  # what type checkers and editors see; nothing is imported at run time
    from kbatch.commands.dedup import dedup
    from kbatch.commands.embed import embed
    from kbatch.commands.keywords import keywords
    from kbatch.commands.match import match
    from kbatch.commands.sts import evaluate, sts
    from kbatch.commands.tokenize import tokenize
    from kbatch.commands.topics import topics
    from kbatch.commands.train import train


def __getattr__(name: str) -> object:
    """Import a command's module the first time its function is asked for."""
    if name not in _COMMANDS:
        raise AttributeError(f"module 'kbatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(_COMMANDS[name]), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
