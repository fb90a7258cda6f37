"""``python -m kbatch.analyzers.mecab_dict DICDIR SOURCE.csv TARGET.dic``: compile a user dictionary.

Runs the bundled libmecab's dictionary compiler, which calls ``exit()`` on errors, in a
process of its own.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path


def main(dicdir: str, source: str, target: str) -> int:
    import mecab_ko

    libs = Path(mecab_ko.__file__).resolve().parent.parent / "mecab_ko.libs"
    library = ctypes.CDLL(str(next(libs.glob("libmecab*"))))
    args = [b"mecab-dict-index", b"-d", dicdir.encode(), b"-u", target.encode(), b"-f", b"utf-8", b"-t", b"utf-8", source.encode()]
    return library.mecab_dict_index(len(args), (ctypes.c_char_p * len(args))(*args))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
