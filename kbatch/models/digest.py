"""A directory's identity from its whole content, fast on the second look.

Names, sizes or the first and last bytes of a file are no identity: a model retrained in
place keeps them. Every byte is hashed once; a memo keyed by what changes when a file
is written (size, mtime, ctime, inode) makes later looks cost a ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 22


def content_fingerprint(path: Path, memo_file: Path) -> str:
    """SHA-256 over every file's relative path, size and content (symlinks followed), first 16
    hex digits.

    Each file's content digest is remembered in ``memo_file`` by resolved path, size, mtime,
    ctime and inode, so a model is read in full once rather than on every command.
    """
    memo = _DigestMemo(memo_file)
    digest = hashlib.sha256()
    for relative, file in files_under(path):
        stat = file.stat()
        digest.update(json.dumps([relative, stat.st_size, memo.digest(file, stat)]).encode() + b"\n")
    memo.save()
    return digest.hexdigest()[:16]


# Folders at a model's top that are bookkeeping, not model: ``hf download --local-dir`` keeps
# download timestamps in .cache/, and a git checkout its history in .git/. Only these, and only
# at the top: a .cache anywhere above the model (~/.cache/...) is no reason to skip anything.
BOOKKEEPING = frozenset({".cache", ".git"})


def files_under(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``root`` by relative posix path, sorted, but for :data:`BOOKKEEPING`
    folders at its top; symlinks are followed (a model's weights may live elsewhere), a symlink loop is not."""
    return sorted(item for item in _walk(root, root, frozenset()) if item[0].split("/", 1)[0] not in BOOKKEEPING)


def _walk(root: Path, directory: Path, ancestors: frozenset[str]) -> Iterator[tuple[str, Path]]:
    real = os.path.realpath(directory)
    if real in ancestors:
        return
    for entry in os.scandir(directory):
        item = Path(entry.path)
        if entry.is_dir():
            yield from _walk(root, item, ancestors | {real})
        elif entry.is_file():
            yield item.relative_to(root).as_posix(), item


def _file_digest(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _DigestMemo:
    """Content digests of files already read, in one JSON file of kbatch's cache.

    An unreadable memo is ignored and rewritten; concurrent writers merge what is on disk
    before an atomic replace, and at worst a lost entry is hashed again.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self.entries = self._read()
        self.fresh: dict[str, list] = {}

    def digest(self, file: Path, stat: os.stat_result) -> str:
        key = os.path.realpath(file)
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        known = self.entries.get(key)
        if isinstance(known, list) and known[:-1] == stamp and isinstance(known[-1], str):
            return known[-1]
        self.fresh[key] = [*stamp, _file_digest(file)]
        return self.fresh[key][-1]

    def save(self) -> None:
        """Add the new digests, dropping files that no longer exist; a cache that cannot be written is skipped."""
        if not self.fresh:
            return
        from kbatch.io.storage import atomic_path  # fsspec, only when there is something to write


        entries = {key: value for key, value in {**self._read(), **self.fresh}.items() if os.path.exists(key)}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.file) as tmp:
                tmp.write_text(json.dumps(entries), encoding="utf-8")
        except OSError:
            pass

    def _read(self) -> dict[str, list]:
        try:
            entries = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return entries if isinstance(entries, dict) else {}
