"""Partition files written atomically, checked for compatibility, and the run manifest.

Each partition is written to a hidden temporary file beside its target, flushed to disk
and renamed, so a file named ``part-NNNNN.parquet`` is always complete. Its Parquet
schema metadata records the run parameters: a rerun trusts a file only when they match.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.errors import OutputConflictError
from kbatch.io import storage

MANIFEST = "_kbatch.json"
META_KEY = b"kbatch"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def read_kbatch_metadata(path: str | Path) -> dict | None:
    """The ``kbatch`` record of a Parquet file (from its key-value footer, which a part's sink
    completes after the data is written), or ``None`` when it has none or is unreadable."""
    try:
        fs, inner = storage.filesystem(storage.location(path))
        meta = pq.read_metadata(inner, filesystem=fs).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    raw = meta.get(META_KEY)
    return json.loads(raw) if raw else None


class OutputDir:
    """An output directory of partition files plus ``_kbatch.json``, on a local disk or a store."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.location = storage.location(path)
        self.fs, self._inner = storage.filesystem(self.location)

    @property
    def manifest_path(self) -> str:
        return storage.join(self.location, MANIFEST)

    def part(self, index: int) -> str:
        return storage.join(self.location, part_name(index))

    def prepare(self, params_key: str, n_partitions: int, overwrite: bool) -> dict[int, dict]:
        """Create the directory; return metadata of partitions already complete.

        Results made with other parameters (another model, input or option) are refused
        unless ``overwrite``, in which case kbatch's own files are removed first.
        """
        if self.fs.exists(self._inner) and not self.fs.isdir(self._inner):
            raise OutputConflictError(f"output {self.location} exists and is not a directory")
        self.fs.makedirs(self._inner, exist_ok=True)
        if overwrite:
            self._clear()
            return {}
        previous = self._manifest_params()
        if previous is not None and previous != params_key:
            raise self._conflict()
        done, gone = {}, []
        for file in self._files("part-*.parquet"):
            meta = read_kbatch_metadata(file)
            if meta is None or meta.get("params") != params_key:
                raise self._conflict()
            index = meta["partition"]["index"]
            if index < n_partitions and storage.name_of(file) == part_name(index):
                done[index] = meta
            else:  # a partition the input no longer has (it shrank): its rows must not stay in the output
                gone.append(file)
        if gone:
            self.start_writing()
        for file in gone:
            self._remove(file)
        return done

    def start_writing(self) -> None:
        """Withdraw the manifest before any part changes: until this run writes its own, the
        output does not claim to be complete."""
        self._remove(self.manifest_path)

    def write_manifest(self, manifest: dict) -> None:
        with storage.atomic_write(self.manifest_path) as handle:
            handle.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def _files(self, pattern: str) -> list[str]:
        """The files of this directory whose names match ``pattern``, as locations, sorted."""
        found = self.fs.glob(storage.join(self._inner, pattern))
        return sorted(storage.join(self.location, storage.name_of(f)) for f in found)

    def _remove(self, location: str) -> None:
        fs, inner = storage.filesystem(location)
        if fs.exists(inner):
            fs.rm(inner)

    def _manifest_params(self) -> str | None:
        fs, inner = storage.filesystem(self.manifest_path)
        if not fs.isfile(inner):
            return None
        try:
            return json.loads(storage.read_bytes(self.manifest_path).decode("utf-8")).get("params_key")
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            raise OutputConflictError(f"{self.manifest_path} is unreadable; rerun with `overwrite` to replace the output") from None

    def _clear(self) -> None:
        for file in [*self._files("part-*.parquet"), *self._files(".*.tmp"), self.manifest_path]:
            self._remove(file)

    def _conflict(self) -> OutputConflictError:
        return OutputConflictError(
            f"{self.location} holds results made with other parameters (model, input or options); "
            "choose another output directory or pass `overwrite` to replace them"
        )
