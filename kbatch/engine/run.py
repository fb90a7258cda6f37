"""Run a pipeline's partitions on the cluster: stages grouped into tasks by resource.

A :class:`Pipeline` is a source, stages and a sink. :func:`plan_tasks` cuts its stages
into runs of one routed resource: on a cluster with GPU workers, embed's read, normalize
and subword stages are one CPU task, encode one GPU task and the write a CPU task again, so
only token ids and vectors travel; where encoding also goes to CPU workers the whole chain is one task and the
partition never leaves its worker. Results stream back as partitions complete, driving
the progress bar.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from kbatch.engine.cluster import Cluster, Routing
from kbatch.engine.sink import PartitionReport, PartitionSink
from kbatch.errors import InputError
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece
from kbatch.stages.base import ColumnType, Stage, check_stages, expand

# The step a job is running (its name in the job file), shown on the dashboard's kbatch page.
current_step: ContextVar[str | None] = ContextVar("kbatch_step", default=None)


@dataclass(frozen=True)
class Pipeline:
    """What a partitioned command does to each partition: ``read`` it, run ``stages``, write
    the ``writes`` columns with ``metadata`` (see :class:`~kbatch.engine.sink.PartitionSink`)."""

    read: Any  # a source (kbatch.stages.read): outputs and __call__(piece) -> DataFrame
    stages: tuple[Stage, ...]
    writes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(expand(self.stages)))

    def columns(self) -> dict[str, ColumnType]:
        """The declared type of every written column, checking every stage's inputs on the way."""
        have = check_stages(self.stages, self.read.outputs)
        types: dict[str, ColumnType] = dict(self.read.outputs)
        for stage in self.stages:
            types.update(stage.outputs)
        missing = [c for c in self.writes if c not in have]
        if missing:
            raise InputError(f"the output needs column(s) {', '.join(missing)}, which no stage provides")
        return {name: types[name] for name in self.writes}

    def keeping(self, keep_cols: Sequence[str], hive_cols: Sequence[str] = ()) -> Pipeline:
        """This pipeline carrying ``keep_cols`` of the input into the output, next to ``id``
        (``hive_cols``: those read from ``key=value`` path segments, as strings)."""
        if not keep_cols:
            return self
        if not hasattr(self.read, "keep_cols") or not all(stage.keeps_rows for stage in self.stages):
            raise InputError("`keep_cols` needs a command whose output rows are its input rows (embed, tokenize, keywords)")
        read = replace(self.read, keep_cols=tuple(keep_cols), hive_cols=tuple(hive_cols))
        rest = tuple(c for c in self.writes if c != "id" and c not in keep_cols)
        return Pipeline(read, self.stages, ("id", *keep_cols, *rest))

    def sink(self, directory: str, metadata: Mapping) -> PartitionSink:
        return PartitionSink(directory, self.columns(), metadata)


@dataclass(frozen=True)
class Task:
    """Consecutive stages that run in one Dask task, on workers with ``resources``."""

    stages: tuple[Stage, ...]
    resources: dict[str, float] | None


def plan_tasks(stages: Sequence[Stage], routing: Routing) -> list[Task]:
    """``stages`` cut where the routed resource changes (the read, and the write after GPU
    stages, run on CPU workers)."""
    tasks: list[Task] = [Task((), routing.of("CPU"))]
    for stage in stages:
        resources = routing.of(stage.resource)
        if resources == tasks[-1].resources:
            tasks[-1] = Task((*tasks[-1].stages, stage), resources)
        else:
            tasks.append(Task((stage,), resources))
    if routing.has_gpus and tasks[-1].resources == routing.gpu:
        # A GPU worker's one thread is for the GPU: a CPU worker writes the part, so the next
        # partition's encoding does not wait for this one's Parquet write (measured on an H200:
        # the write was 44% of the GPU worker's time with 1,000-row partitions).
        tasks.append(Task((), routing.of("CPU")))
    return tasks


def read_partition(piece: Piece, read: Callable[[Piece], pd.DataFrame]) -> tuple[pd.DataFrame, PartitionReport]:
    """A partition's rows and a report that starts with their digest and the read's seconds."""
    start = time.perf_counter()
    frame = read(piece)
    report = PartitionReport(piece.index, len(frame), piece_digest(piece), {"read": time.perf_counter() - start})
    return frame, report


def run_stages(frame: pd.DataFrame, stages: Sequence[Stage], report: PartitionReport) -> pd.DataFrame:
    """Apply ``stages`` in order, noting each one's seconds, counts and errors in ``report``.

    Skip reasons are noted before a stage that reshapes the rows (top-k turns left rows into
    matches); the last frame's replace them when it has one row per input row again.
    """
    for stage in stages:
        if not stage.keeps_rows and "skip_reason" in frame:
            report.note_skips(frame)
        start = time.perf_counter()
        frame = stage(frame)
        report.seconds[type(stage).__name__] = report.seconds.get(type(stage).__name__, 0.0) + time.perf_counter() - start
        report.counts.update(stage.counts(frame))
        report.errors.extend(stage.errors(frame))
    return frame


def run_task(start: Piece | tuple[pd.DataFrame, PartitionReport], read: Callable | None, stages: Sequence[Stage],
             sink: PartitionSink | None, all_stages: Sequence[Stage] = ()) -> tuple[pd.DataFrame, PartitionReport] | dict:
    """One task of a partition: read (first task) or take the frame the task before handed on,
    run ``stages``, and write (last task: the record; ``all_stages`` describe the part)."""
    frame, report = read_partition(start, read) if read is not None else start
    frame = run_stages(frame, stages, report)
    if sink is None:
        return frame, report
    if report.skipped is None or ("skip_reason" in frame and len(frame) == report.rows):
        report.note_skips(frame)
    described = {key: value for stage in all_stages for key, value in stage.describe().items()}
    return sink.write(frame, report, described)


def run_partitions(cluster: Cluster, pieces: Sequence[Piece], pipeline: Pipeline, sink: PartitionSink,
                   progress: bool = True, label: str = "rows") -> list[dict]:
    """Submit every piece through the pipeline's tasks, wait for all, and return each part's record.

    Partition *i* gets priority *-i* on all its tasks, so a worker finishes the partitions it
    started before reading new ones, and what a task hands on is released as soon as its
    partition is written.
    """
    client, run = cluster.client, uuid.uuid4().hex[:8]
    tasks = plan_tasks(pipeline.stages, cluster.routing)
    handed: dict[str, list] = {}
    finished = []
    for piece in pieces:
        future, between = piece, []
        for number, task in enumerate(tasks):
            last = number == len(tasks) - 1
            future = client.submit(
                run_task, future, pipeline.read if number == 0 else None, task.stages, sink if last else None,
                pipeline.stages if last else (), key=f"kbatch-{_task_name(number, len(tasks))}-{run}-{piece.index}",
                resources=task.resources, priority=-piece.index,
            )
            between.append(future)
        finished.append(future)
        handed[future.key] = between[:-1]
    results = []

    def collect(future) -> None:
        results.append(future.result())
        for earlier in handed.pop(future.key):
            earlier.release()

    others = [f for futures in handed.values() for f in futures]
    follow(client, finished, [p.rows for p in pieces], label, progress, collect, also_cancel=others, desc=_loading(pipeline, cluster))
    return results


def _loading(pipeline: Pipeline, cluster: Cluster) -> str | None:
    """What the bar says until the first partition is done: the workers are loading models."""
    loads = [(what, stage.resource) for stage in pipeline.stages if (what := stage.loads())]
    if not loads:
        return None
    workers = cluster.workers_for(cluster.routing.of(loads[-1][1]))
    return f"loading {' and '.join(what for what, _ in loads)} on {workers} worker{'s' if workers != 1 else ''}"


def _task_name(number: int, tasks: int) -> str:
    """What the dashboard calls a partition's task: its whole work, or the first (read and CPU
    stages), a middle one, or the last (the stages that write)."""
    if tasks == 1:
        return "partition"
    return "prepare" if number == 0 else "finish" if number == tasks - 1 else f"step{number}"


def follow(
    client, futures: Sequence, rows: Sequence[int], label: str, progress: bool,
    on_done: Callable[[object], None] = lambda future: future.result() if future.status == "error" else None,
    also_cancel: Sequence = (),
    desc: str | None = None,
) -> None:
    """Wait for ``futures`` (``rows`` each) with a progress bar, calling ``on_done`` on each as
    it completes (by default: raise its error, fetch nothing); on failure cancel them all.
    ``desc`` is the bar's text until the first one completes."""
    from distributed import as_completed

    from kbatch.engine import monitor

    counts = {f.key: n for f, n in zip(futures, rows, strict=True)}
    step, total, done = current_step.get() or label, sum(rows), 0
    monitor.report(client, step, 0, total)
    bar = tqdm(total=total, unit=label, disable=not progress or not futures, file=sys.stderr, smoothing=0.1, desc=desc)  # no empty bars
    try:
        for future in as_completed(futures):
            on_done(future)
            if desc and not done:
                bar.set_description_str("", refresh=False)
            bar.update(counts[future.key])
            done += counts[future.key]
            monitor.report(client, step, done, total, finished=done == total)
    except BaseException:
        client.cancel([*also_cancel, *futures])
        raise
    finally:
        bar.close()


def tree_reduce(client, futures: list, join: Callable, resources: dict | None, fan_in: int = 8):
    """``join`` futures ``fan_in`` at a time on the workers until one future is left."""
    while len(futures) > 1:
        futures = [client.submit(join, *futures[i : i + fan_in], resources=resources, pure=False) for i in range(0, len(futures), fan_in)]
    return futures[0]
