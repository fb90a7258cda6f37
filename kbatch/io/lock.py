"""One writer per output: an advisory lock that the operating system releases when its
process dies, so a killed run never blocks the next one and a live run is never joined.

The lock file is removed when the lock is released, so no run, finished or refused,
leaves one beside its output (a killed run leaves an unlocked one, which the next run
takes). Removing it is safe because the holder unlinks it while still holding it, and a
run that locks a file checks that it is still the one at the path, or tries again.

An object store has no advisory locks. There the lock is an object ``<output>.lock``
written only if absent (a conditional create, ``If-None-Match: *``): of two runs, one
creates it and the other is refused. Nothing removes it when its holder is killed, so a
run killed with SIGKILL leaves it; the refusal names the holder and the object to delete
once that run is known to be dead.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kbatch.errors import OutputLockedError
from kbatch.io import storage


@contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``<output>.lock`` (beside the output, which may be renamed while held) or fail at once."""
    if storage.is_url(output):
        with _object_lock(f"{storage.location(output)}.lock", output):
            yield
        return
    path = Path(f"{Path(output).resolve()}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _lock(path, output)
    try:
        try:
            _write_holder(fd)
        except OSError as exc:  # a full disk: name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking: nobody can lock a file that is gone
        os.close(fd)


@contextmanager
def _object_lock(lock: str, output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the lock object ``lock`` in a store: created only if absent, deleted on release."""
    fs, inner = storage.filesystem(lock)
    try:
        fs.pipe_file(inner, _holder_record(), mode="create")  # a body: an empty create is sent without the condition
    except FileExistsError:
        holder = _holder(fs.cat_file(inner))
        raise OutputLockedError(f"{output} is being written by another kbatch run{holder}; wait for it or stop it "
                                f"(a run that was killed leaves {lock}: delete it once that run is gone)") from None
    try:
        yield
    finally:
        fs.rm(inner)


def _lock(path: Path, output: str | os.PathLike[str]) -> int:
    """A descriptor of ``path`` locked by this process. A file locked after its last holder
    unlinked it is no longer at ``path``: open and lock what is there now."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.read(fd, 4096))
            os.close(fd)
            raise OutputLockedError(f"{output} is being written by another kbatch run{holder}; wait for it or stop it") from None
        if _is_at(fd, path):
            return fd
        os.close(fd)


def _write_holder(fd: int) -> None:
    """Who holds the lock, for the message of a run that is refused."""
    os.ftruncate(fd, 0)  # a killed run's holder may have been longer
    os.write(fd, _holder_record())


def _holder_record() -> bytes:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()


def _is_at(fd: int, path: Path) -> bool:
    try:
        found = path.stat()
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(data: bytes) -> str:
    try:
        found = json.loads(data)
        return f" (pid {found['pid']} on {found['host']}, since {found['since']})"
    except (ValueError, KeyError, TypeError):
        return ""
