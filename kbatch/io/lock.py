"""One writer per output: an advisory lock that the operating system releases when its
process dies, so a killed run never blocks the next one and a live run is never joined.
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


@contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``<output>.lock`` (beside the output, which may be renamed while held) or fail at once."""
    path = Path(f"{Path(output).resolve()}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = _holder(handle.read())
            raise OutputLockedError(f"{output} is being written by another kbatch run{holder}; wait for it or stop it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(text: str) -> str:
    try:
        found = json.loads(text)
        return f" (pid {found['pid']} on {found['host']}, since {found['since']})"
    except (ValueError, KeyError, TypeError):
        return ""
