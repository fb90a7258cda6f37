"""``python -m kbatch.analyzers.mecab_dict DICDIR SOURCE.csv TARGET.dic``: compile a user dictionary.

Runs the bundled libmecab's dictionary compiler, which calls ``exit()`` on errors, in a
process of its own.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path


def main(dicdir: str, source: str, target: str) -> int:
    library = ctypes.CDLL(str(_libmecab()))
    args = [b"mecab-dict-index", b"-d", dicdir.encode(), b"-u", target.encode(), b"-f", b"utf-8", b"-t", b"utf-8", source.encode()]
    return library.mecab_dict_index(len(args), (ctypes.c_char_p * len(args))(*args))


def _libmecab() -> Path:
    """The libmecab bundled with ``mecab-ko`` (a separate library in Linux and macOS wheels,
    else the extension module itself)."""
    import mecab_ko

    package = Path(mecab_ko.__file__).resolve().parent
    places = ((package.parent / "mecab_ko.libs", "libmecab*"), (package / ".dylibs", "libmecab*"), (package, "_MeCab*"))
    for directory, pattern in places:
        found = sorted(directory.glob(pattern))
        if found:
            return found[0]
    raise SystemExit(f"no libmecab found beside {package}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
