"""Run partitions through a CPU stage chain and a final (GPU or CPU) task on the cluster.

Each partition becomes two tasks: ``prepare`` (read and CPU stages, routed to CPU
workers) and ``finish`` (e.g. encode and write, routed to GPU workers when there are
any); when both run on CPU workers they are one task. Results stream back as
partitions complete, driving the progress bar.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import pandas as pd
from tqdm.auto import tqdm

from kbatch.engine.cluster import Cluster
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece, read_piece
from kbatch.stages.base import Stage

# The step a job is running (its name in the job file), shown on the dashboard's kbatch page.
current_step: ContextVar[str | None] = ContextVar("kbatch_step", default=None)


class Prepared(NamedTuple):
    """What a partition's CPU task hands its finishing task.

    ``data`` is the command's (a frame, pairs of frames, a block of vectors); ``seconds``
    the stage times so far; ``input_digest`` the hash of the input rows it came from, which
    the part file records and a rerun checks (:mod:`kbatch.io.identity`).
    """

    data: Any
    seconds: dict[str, float]
    input_digest: str


def prepare_partition(piece: Piece, text_col: str, id_col: str | None, stages: Sequence[Stage]) -> Prepared:
    """Read one partition and run the CPU stages."""
    start = time.perf_counter()
    frame = read_piece(piece, text_col, id_col)
    seconds = {"read": time.perf_counter() - start}
    return Prepared(run_stages(frame, stages, seconds), seconds, piece_digest(piece))


def run_stages(frame: pd.DataFrame, stages: Sequence[Stage], seconds: dict[str, float]) -> pd.DataFrame:
    """Apply ``stages`` in order, adding each one's seconds to ``seconds`` by class name."""
    for stage in stages:
        start = time.perf_counter()
        frame = stage(frame)
        seconds[type(stage).__name__] = time.perf_counter() - start
    return frame


def prepare_and_finish(piece: Piece, prepare: Callable[..., Prepared], prepare_args: tuple, finish: Callable[..., dict],
                       finish_args: tuple) -> dict:
    """Both steps in one task, for commands whose finish also runs on CPU workers: the
    prepared frame never leaves the worker."""
    return finish(prepare(piece, *prepare_args), piece.index, *finish_args)


def run_partitions(
    cluster: Cluster,
    pieces: Sequence[Piece],
    prepare_args: tuple,
    finish: Callable[..., dict],
    finish_args: tuple,
    progress: bool = True,
    label: str = "rows",
    finish_on_cpu: bool = False,
    prepare: Callable[..., Prepared] = prepare_partition,
) -> list[dict]:
    """Submit every piece, wait for all, and return what ``finish`` returned for each.

    Partition *i* gets priority *-i* on both its tasks, so a worker finishes the
    partitions it started before preparing new ones, and prepared token ids are
    released as soon as their partition is written.
    """
    client, routing = cluster.client, cluster.routing
    run = uuid.uuid4().hex[:8]
    prepared: dict[str, object] = {}
    finished = []
    for piece in pieces:
        if finish_on_cpu:
            fin = client.submit(
                prepare_and_finish, piece, prepare, prepare_args, finish, finish_args,
                key=f"kbatch-partition-{run}-{piece.index}", resources=routing.cpu, priority=-piece.index,
            )
        else:
            prep = client.submit(
                prepare, piece, *prepare_args,
                key=f"kbatch-prepare-{run}-{piece.index}", resources=routing.cpu, priority=-piece.index,
            )
            fin = client.submit(
                finish, prep, piece.index, *finish_args,
                key=f"kbatch-finish-{run}-{piece.index}", resources=routing.encode, priority=-piece.index,
            )
            prepared[fin.key] = prep
        finished.append(fin)
    results = []

    def collect(future) -> None:
        results.append(future.result())
        if future.key in prepared:
            prepared.pop(future.key).release()

    follow(client, finished, [p.rows for p in pieces], label, progress, collect, also_cancel=list(prepared.values()))
    return results


def follow(
    client, futures: Sequence, rows: Sequence[int], label: str, progress: bool,
    on_done: Callable[[object], None] = lambda future: future.result() if future.status == "error" else None,
    also_cancel: Sequence = (),
) -> None:
    """Wait for ``futures`` (``rows`` each) with a progress bar, calling ``on_done`` on each as
    it completes (by default: raise its error, fetch nothing); on failure cancel them all."""
    from distributed import as_completed

    from kbatch.engine import monitor

    counts = {f.key: n for f, n in zip(futures, rows, strict=True)}
    step, total, done = current_step.get() or label, sum(rows), 0
    monitor.report(client, step, 0, total)
    bar = tqdm(total=total, unit=label, disable=not progress or not futures, file=sys.stderr, smoothing=0.1)  # no empty bars
    try:
        for future in as_completed(futures):
            on_done(future)
            bar.update(counts[future.key])
            done += counts[future.key]
            monitor.report(client, step, done, total, finished=done == total)
    except BaseException:
        client.cancel([*also_cancel, *futures])
        raise
    finally:
        bar.close()
