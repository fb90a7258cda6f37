"""Errors a user can act on, each with its own exit code.

The CLI prints ``kbatch: <message>`` on one line and exits with ``exit_code``, so a
scheduler (cron, Airflow) can tell bad input from a refused output or a broken cluster.
"""

from __future__ import annotations

import errno
import os

# Disk full, no permission, read-only or over quota: the output cannot be written.
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT})
INTERRUPTED = 130


class KbatchError(Exception):
    """Base class: the message says what failed and what to do next."""

    exit_code = 1


class InputError(KbatchError):
    """The input cannot be read as asked: missing file or column, bad type, no rows."""

    exit_code = 3


class OutputConflictError(KbatchError):
    """The output directory holds results made with other parameters, or is locked."""

    exit_code = 4


class ModelError(KbatchError):
    """The model cannot be found or loaded offline."""

    exit_code = 5


class ClusterError(KbatchError):
    """The cluster file is invalid or the scheduler cannot be reached."""

    exit_code = 6


class AnalyzerError(KbatchError):
    """A morphological analyzer is not installed, needs Java, or cannot take an option."""

    exit_code = 7


class OutputLockedError(KbatchError):
    """Another kbatch run is writing the same output right now."""

    exit_code = 8


class MainGuardError(KbatchError, SystemExit):
    """A script started kbatch's local cluster from its top level, outside ``if __name__ == "__main__":``.

    Also a ``SystemExit``: the check prints the one line itself, so a script that does not
    catch it ends with ``exit_code`` and no traceback, while ``except KbatchError`` still
    catches it (docs/decisions.md, "A script without the main guard").
    """

    exit_code = 9

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = self.exit_code


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a library's multi-line error kept to one line)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def failure_line(exc: BaseException) -> tuple[str, int]:
    """The one line (without ``kbatch: ``) and the exit code the user gets for ``exc``.

    A message is kept to one line whatever raised it; an unexpected error shows only the
    first line of its own message (its traceback goes to the run's log).
    """
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; rerun the same command to resume", INTERRUPTED
    if isinstance(exc, KbatchError):
        return f"error: {' '.join(str(exc).split())}", exc.exit_code
    if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
        where = f" {exc.filename}" if exc.filename else ""
        reason = os.strerror(exc.errno)  # pyarrow's strerror is a paragraph
        return f"error: cannot write{where}: {reason}; nothing incomplete was left under a final name", OutputConflictError.exit_code
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"error: unexpected {type(exc).__name__}: {first}", KbatchError.exit_code
