"""User dictionaries: words an analyzer must keep whole (brand names, product terms).

File format, UTF-8, one word per line, ``#`` starts a comment::

    노이즈캔슬링
    갤럭시버즈   NNP

The tag is a unified tag (default ``NNP``); the words travel inside the stage
configuration, so remote workers do not need the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from kbatch.errors import InputError
from kbatch.io.text_formats import read_utf8

# Tags a user word may carry: the open classes a dictionary entry can add.
USER_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "MAG", "XR", "SL", "SH", "SN", "IC"})


class UserWord(NamedTuple):
    form: str
    tag: str = "NNP"


def read_user_dict(path: str | os.PathLike[str]) -> tuple[UserWord, ...]:
    """Parse a user dictionary file; a bad line is an error naming its line number."""
    path = Path(path)
    text = read_utf8(path, f"`user_dict` {path}")
    words: dict[str, UserWord] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise InputError(f"{path}:{number}: expected 'word' or 'word TAG', got {line.strip()!r}")
        word = UserWord(fields[0], fields[1].upper() if len(fields) == 2 else "NNP")
        if word.tag not in USER_TAGS:
            raise InputError(f"{path}:{number}: tag {word.tag} cannot be added; use one of {', '.join(sorted(USER_TAGS))}")
        words[word.form] = word
    if not words:
        raise InputError(f"`user_dict` {path}: no words in it")
    return tuple(words.values())
