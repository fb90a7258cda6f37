"""Partition files written atomically, checked for compatibility, and the run manifest.

Each partition is written to a hidden temporary file beside its target, flushed to disk
and renamed, so a file named ``part-NNNNN.parquet`` is always complete. Its Parquet
schema metadata records the run parameters: a rerun trusts a file only when they match.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.errors import OutputConflictError

MANIFEST = "_kbatch.json"
META_KEY = b"kbatch"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto it only once written and synced."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:  # pyarrow's write errors name no file
            raise OSError(exc.errno, os.strerror(exc.errno), str(path)) from exc
        raise
    finally:
        tmp.unlink(missing_ok=True)


def read_kbatch_metadata(path: str | Path) -> dict | None:
    """The ``kbatch`` record of a Parquet file (from its key-value footer, which a part's sink
    completes after the data is written), or ``None`` when it has none or is unreadable."""
    try:
        meta = pq.read_metadata(path).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    raw = meta.get(META_KEY)
    return json.loads(raw) if raw else None


class OutputDir:
    """An output directory of partition files plus ``_kbatch.json``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def prepare(self, params_key: str, n_partitions: int, overwrite: bool) -> dict[int, dict]:
        """Create the directory; return metadata of partitions already complete.

        Results made with other parameters (another model, input or option) are refused
        unless ``overwrite``, in which case kbatch's own files are removed first.
        """
        if self.path.exists() and not self.path.is_dir():
            raise OutputConflictError(f"output {self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self._clear()
            return {}
        previous = self._manifest_params()
        if previous is not None and previous != params_key:
            raise self._conflict()
        done, gone = {}, []
        for file in sorted(self.path.glob("part-*.parquet")):
            meta = read_kbatch_metadata(file)
            if meta is None or meta.get("params") != params_key:
                raise self._conflict()
            index = meta["partition"]["index"]
            if index < n_partitions and file.name == part_name(index):
                done[index] = meta
            else:  # a partition the input no longer has (it shrank): its rows must not stay in the output
                gone.append(file)
        if gone:
            self.start_writing()
        for file in gone:
            file.unlink()
        return done

    def start_writing(self) -> None:
        """Withdraw the manifest before any part changes: until this run writes its own, the
        output does not claim to be complete."""
        self.manifest_path.unlink(missing_ok=True)

    def write_manifest(self, manifest: dict) -> None:
        with atomic_path(self.manifest_path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def _manifest_params(self) -> str | None:
        if not self.manifest_path.is_file():
            return None
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8")).get("params_key")
        except (json.JSONDecodeError, OSError):
            raise OutputConflictError(f"{self.manifest_path} is unreadable; rerun with `overwrite` to replace the output") from None

    def _clear(self) -> None:
        for file in [*self.path.glob("part-*.parquet"), *self.path.glob(".*.tmp"), self.manifest_path]:
            file.unlink(missing_ok=True)

    def _conflict(self) -> OutputConflictError:
        return OutputConflictError(
            f"{self.path} holds results made with other parameters (model, input or options); "
            "choose another output directory or pass `overwrite` to replace them"
        )
