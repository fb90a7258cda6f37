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

    @property
    def manifest_path(self) -> str:
        return storage.join(self.location, MANIFEST)

    def part(self, index: int) -> str:
        return storage.join(self.location, part_name(index))

    def prepare(self, params_key: str, n_partitions: int, overwrite: bool) -> dict[int, dict]:
        """Create the directory, with nothing left of a killed run's unfinished writes; return
        metadata of partitions already complete.

        Results made with other parameters (another model, input or option) are refused
        unless ``overwrite``, in which case kbatch's own files are removed first.
        """
        if storage.exists(self.location) and not storage.is_dir(self.location):
            raise OutputConflictError(f"output {self.location} exists and is not a directory")
        storage.make_dirs(self.location)
        self._remove_unfinished()
        if overwrite:
            self._clear()
            return {}
        previous = self._manifest_params()
        if previous is not None and previous != params_key:
            raise self._conflict()
        done, gone = {}, []
        for file in storage.glob(self.location, "part-*.parquet"):
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
            storage.remove(file)
        return done

    def start_writing(self) -> None:
        """Withdraw the manifest before any part changes: until this run writes its own, the
        output does not claim to be complete."""
        storage.remove(self.manifest_path)

    def write_manifest(self, manifest: dict) -> None:
        with storage.atomic_write(self.manifest_path) as handle:
            handle.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    def _manifest_params(self) -> str | None:
        if not storage.is_file(self.manifest_path):
            return None
        try:
            return json.loads(storage.read_bytes(self.manifest_path).decode("utf-8")).get("params_key")
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            raise OutputConflictError(f"{self.manifest_path} is unreadable; rerun with `overwrite` to replace the output") from None

    def _remove_unfinished(self) -> None:
        """What a killed run was writing: hidden temporary files, unfinished uploads. This run
        holds the output's lock, so no live run is writing them."""
        for file in storage.glob(self.location, ".*.tmp"):
            storage.remove(file)
        storage.abort_uploads(self.location)

    def _clear(self) -> None:
        for file in [*storage.glob(self.location, "part-*.parquet"), self.manifest_path]:
            storage.remove(file)

    def _conflict(self) -> OutputConflictError:
        return OutputConflictError(
            f"{self.location} holds results made with other parameters (model, input or options); "
            "choose another output directory or pass `overwrite` to replace them"
        )
