"""Where the details of a failure go: one log file per command line run.

The user sees one line per failure; the traceback, the ``distributed``/``dask``/``kbatch``
log records of the client and everything the local worker processes print go to
``<log dir>/kbatch-<YYYYmmdd-HHMMSS>-<pid>-<command>.log``, which that line names. The log dir is
``$KBATCH_LOG_DIR``, else ``$KBATCH_CACHE_DIR/logs`` (``~/.cache/kbatch/logs``): not beside
the output, because not every command has one (``inspect``, ``evaluate``), the output may be
what cannot be written (a full disk, a read-only share), and a file inside an output
directory would be read as part of it. The newest :data:`KEEP_LOGS` files are kept.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import dask.config

# The run's log file, inherited by the worker processes of a local cluster.
LOG_ENV = "KBATCH_RUN_LOG"
KEEP_LOGS = 100
FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s"


def log_dir() -> Path:
    """``$KBATCH_LOG_DIR``, else ``logs`` in kbatch's cache (``$KBATCH_CACHE_DIR``, ``~/.cache/kbatch``)."""
    if "KBATCH_LOG_DIR" in os.environ:
        return Path(os.environ["KBATCH_LOG_DIR"])
    from kbatch.models.resolve import cache_dir

    return cache_dir() / "logs"


@contextmanager
def run_log(command: str) -> Iterator[Path | None]:
    """For one run of ``command``: Python logging (with warnings) of this process, and what
    the workers of a local cluster started meanwhile print, go to a new log file instead of
    the terminal; everything is put back afterwards. ``None`` when no log file can be made."""
    path = _new_log_path(command)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True) if path else logging.NullHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    with _logging_to(handler), _workers_log_to(path):
        yield path


def _new_log_path(command: str) -> Path | None:
    directory = log_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    _prune(directory)
    return directory / f"kbatch-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{command}.log"


def _prune(directory: Path) -> None:
    """Delete kbatch's oldest logs, leaving room for this run's among the newest
    :data:`KEEP_LOGS` (their names start with their time, so they sort by it)."""
    for old in sorted(directory.glob("kbatch-????????-??????-*.log"))[: -(KEEP_LOGS - 1)]:  # never another program's logs
        with suppress(OSError):  # another run may be pruning the same file
            old.unlink()


@contextmanager
def _logging_to(handler: logging.Handler) -> Iterator[None]:
    """Every log record and warning of this process to ``handler`` only.

    Handlers that write to the terminal (``distributed`` installs one on import) are taken
    off and their loggers made to propagate to the root, which holds ``handler``; a log
    that cannot be written (a full disk) stays silent rather than print errors of its own.
    """
    root = logging.getLogger()
    muted = _terminal_handlers()
    for logger, handlers, _ in muted:
        for each in handlers:
            logger.removeHandler(each)
        logger.propagate = True
    saved = root.level, logging.raiseExceptions
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.raiseExceptions = False
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        root.setLevel(saved[0])
        logging.raiseExceptions = saved[1]
        for logger, handlers, propagate in muted:
            for each in handlers:
                logger.addHandler(each)
            logger.propagate = propagate


def _terminal_handlers() -> list[tuple[logging.Logger, list[logging.Handler], bool]]:
    """(logger, its handlers writing to stdout or stderr, its ``propagate``) for every logger that has some."""
    terminal = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    loggers = [logging.getLogger(), *(v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    found = []
    for logger in loggers:
        handlers = [h for h in logger.handlers if type(h) is logging.StreamHandler and id(h.stream) in terminal]
        if handlers:
            found.append((logger, handlers, logger.propagate))
    return found


@contextmanager
def _workers_log_to(path: Path | None) -> Iterator[None]:
    """Worker processes of a local cluster started meanwhile run :func:`dask_setup` (a
    worker preload, which the nanny passes on with the rest of the dask config) with
    ``path`` in their environment. Workers kbatch does not start are left alone."""
    if path is None:
        yield
        return
    preload = [*dask.config.get("distributed.worker.preload", default=[]), __name__]
    previous = os.environ.get(LOG_ENV)
    os.environ[LOG_ENV] = str(path)
    try:
        with dask.config.set({"distributed.worker.preload": preload}):
            yield
    finally:
        if previous is None:
            os.environ.pop(LOG_ENV, None)
        else:
            os.environ[LOG_ENV] = previous


def dask_setup(worker: object) -> None:
    """Worker preload: what this worker process prints (Dask's records of a failed task,
    tracebacks, library warnings) goes to the run's log file; and Ctrl-C, which the
    terminal sends to every process of the run, is left to the client, which closes the
    cluster, instead of each worker printing the traceback of its interrupted loop."""
    path = os.environ.get(LOG_ENV)
    if path:
        _redirect_output(path)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _redirect_output(path: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return  # the log cannot be made: the worker keeps the terminal
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
