"""Errors a user can act on, each with its own exit code.

The CLI prints ``kbatch: <message>`` on one line and exits with ``exit_code``, so a
scheduler (cron, Airflow) can tell bad input from a refused output or a broken cluster.
"""

from __future__ import annotations


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
