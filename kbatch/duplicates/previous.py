"""Kept sets of earlier nights: what tonight's rows are checked against.

Every ``dedup`` output holds ``_kept.parquet`` (position in its input, id, hash pair and
length of each kept row) and lists in its manifest the kept sets of every night it was
checked against, its own last. A night given ``previous`` reads that list, so its rows are
compared with every row any earlier night kept, and none of those is ever dropped.

The list names each file relative to the output that lists it: a job builds a night in
``NIGHT.partial`` and renames it, so a path recorded while it was built would point nowhere.
Nights move together (same depth, side by side), so relative names stay true.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from kbatch.errors import InputError
from kbatch.io import storage
from kbatch.io.writer import MANIFEST

KEPT_FILE = "_kept.parquet"


@dataclass(frozen=True)
class KeptSet:
    """One night's kept rows (``kept``: its ``_kept.parquet``) and the vectors they index (``None``:
    an exact-only night)."""

    kept: str
    vectors: str | None
    rows: int
    model: str | None  # the vectors' model fingerprint

    def as_dict(self, base: str) -> dict:
        """The entry of a manifest written at ``base``: its files named relative to ``base``."""
        entry = asdict(self)
        entry.update(kept=relative(self.kept, base), vectors=self.vectors and relative(self.vectors, base))
        return entry

    @classmethod
    def from_dict(cls, entry: dict, base: str) -> KeptSet:
        """An entry of the manifest at ``base``, its files as locations again."""
        vectors = entry.get("vectors")
        return cls(**{**entry, "kept": resolved(entry["kept"], base), "vectors": vectors and resolved(vectors, base)})


def _split(location: str) -> tuple[str, str]:
    """(``scheme://bucket`` or ``""``, the path below it)."""
    if storage.is_url(location):
        scheme, _, rest = location.partition("://")
        bucket, _, path = rest.partition("/")
        return f"{scheme}://{bucket}", "/" + path
    return "", location


def relative(location: str, base: str) -> str:
    """``location`` as seen from the folder ``base``; as is when it lies on another store or bucket."""
    (root, path), (base_root, base_path) = _split(storage.location(location)), _split(storage.location(base))
    return posixpath.relpath(path, base_path) if root == base_root else storage.location(location)


def resolved(name: str, base: str) -> str:
    """A name written by :func:`relative` at ``base``, as a location."""
    if storage.is_url(name) or name.startswith("/"):
        return name
    root, path = _split(storage.location(base))
    return root + posixpath.normpath(posixpath.join(path, name))


@dataclass
class Earlier:
    """The kept sets, and their rows one after the other: global rows ``0 … len(ids) - 1``."""

    sets: list[KeptSet]
    ids: pa.Array | None
    hashes: np.ndarray
    lengths: np.ndarray
    positions: list[np.ndarray]  # per set: the kept rows' positions in its vectors

    @property
    def rows(self) -> int:
        return len(self.hashes)


def read_earlier(previous) -> Earlier:
    """The kept sets that ``previous`` (a ``dedup`` output, or ``None``) was checked against and its own."""
    if previous is None:
        return Earlier([], None, np.empty((0, 2), np.uint64), np.empty(0, np.int32), [])
    path = storage.join(storage.location(previous), MANIFEST)
    manifest = json.loads(storage.read_bytes(path)) if storage.is_file(path) else {}
    if manifest.get("command") != "dedup" or manifest.get("status") != "complete":
        raise InputError(f"`previous` {previous} is not a complete dedup output (no {MANIFEST} of a finished dedup)")
    sets = [KeptSet.from_dict(entry, storage.location(previous)) for entry in manifest["kept_sets"]]
    tables = [storage.read_table(s.kept) for s in sets]
    return Earlier(sets, pa.concat_arrays([t.column("id").combine_chunks() for t in tables]),
                   np.concatenate([np.stack([t.column("h1").to_numpy(), t.column("h2").to_numpy()], axis=1) for t in tables]),
                   np.concatenate([t.column("length").to_numpy() for t in tables]),
                   [t.column("position").to_numpy() for t in tables])


def write_kept(out: str, positions: np.ndarray, ids: pa.Array, hashes: np.ndarray, lengths: np.ndarray) -> str:
    """Tonight's kept rows as the next night reads them."""
    target = storage.join(out, KEPT_FILE)
    storage.write_parquet(pa.table({"position": positions.astype(np.int64), "id": ids, "h1": hashes[:, 0], "h2": hashes[:, 1],
                                    "length": lengths.astype(np.int32)}), target)
    return target
