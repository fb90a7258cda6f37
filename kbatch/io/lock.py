"""One writer per output: an advisory lock that the operating system releases when its
process dies, so a killed run never blocks the next one and a live run is never joined.

The lock file is removed when the lock is released, so no run, finished or refused,
leaves one beside its output (a killed run leaves an unlocked one, which the next run
takes). Removing it is safe because the holder unlinks it while still holding it, and a
run that locks a file checks that it is still the one at the path, or tries again.

An object store has no advisory locks. There the lock is an object ``<output>.lock``
written only if absent (a conditional create, ``If-None-Match: *``): of two runs, one
creates it and the other is refused. Nothing removes it when its holder is killed, so the
object names its holder (host, pid and the process's start time), and the rule is:

- a lock whose holder ran on this host and is gone (no such pid, or the pid now belongs
  to a process started later) is taken over: deleted and created again for this run. The
  runs of one host take a lock over one at a time (a local file lock), each reading the
  holder again first, so two reruns never both take it;
- a lock held on another host is never taken: kbatch cannot see that host's processes.
  The refusal names the holder and the object to delete once that run is known to be dead.

So a live run is never joined (host names are taken to name machines), and a run killed
on this host never blocks the next one here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

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
    with _file_lock(path, output):
        yield


@contextmanager
def _file_lock(path: Path, output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the local lock file ``path`` (for ``output``, named in a refusal), removed on release."""
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
    if not _create(fs, inner):
        _take_over(fs, inner, lock, output)
    try:
        yield
    finally:
        fs.rm(inner)


def _create(fs, inner: str) -> bool:
    """Create the lock object naming this run, unless it exists."""
    try:
        fs.pipe_file(inner, _holder_record(), mode="create")  # a body: an empty create is sent without the condition
        return True
    except FileExistsError:
        return False


def _take_over(fs, inner: str, lock: str, output: str | os.PathLike[str]) -> None:
    """Take the lock object a dead run of this host left, or refuse. One run of this host at a
    time, so the holder read is still the holder when it is deleted."""
    guard = Path(tempfile.gettempdir()) / f"kbatch-takeover-{hashlib.sha256(lock.encode()).hexdigest()[:16]}.lock"
    with _file_lock(guard, output):
        try:
            holder = fs.cat_file(inner)
        except FileNotFoundError:  # released meanwhile
            holder = None
        if holder is not None and not _left_by_dead_run(holder):
            raise _refusal(holder, lock, output)
        if holder is not None:
            fs.rm(inner)
        if not _create(fs, inner):  # a run on another host created it meanwhile
            raise _refusal(fs.cat_file(inner), lock, output)


def _refusal(holder: bytes, lock: str, output: str | os.PathLike[str]) -> OutputLockedError:
    return OutputLockedError(f"{output} is being written by another kbatch run{_holder(holder)}; wait for it or stop it "
                             f"(a run killed on another host leaves {lock}: delete it once that run is gone)")


def _left_by_dead_run(data: bytes) -> bool:
    """Whether the holder ``data`` names ran on this host and is gone (its pid unused, or reused since)."""
    try:
        found = json.loads(data)
        host, pid, started = found["host"], int(found["pid"]), found.get("started")
    except (ValueError, KeyError, TypeError):
        return False  # not kbatch's record: not ours to delete
    return host == socket.gethostname() and not _is_running(pid, started)


def _is_running(pid: int, started: float | None) -> bool:
    """Whether process ``pid`` runs and is the one that started at ``started`` (any, when unknown)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and started in (None, _start_time(process))
    except psutil.NoSuchProcess:
        return False


def _start_time(process: psutil.Process) -> float:
    """When ``process`` started (seconds since the epoch, to 1/100 s: the same on every reading)."""
    return round(process.create_time(), 2)


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
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "started": _start_time(psutil.Process())}).encode()


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
