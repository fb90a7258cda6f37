"""The command frame every command runs in: lock the output, join or start the cluster, run,
write the manifest, report.

:func:`open_command` is the frame itself (``topics`` runs its own steps inside it);
:func:`run_partitioned` runs a :class:`Partitioned` command in it: plan the input, keep
the complete partitions whose input is unchanged, run the pipeline over the rest, and
describe the output. A new command supplies only its parameters and its pipeline.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TextIO, TypeVar

from kbatch.engine.cluster import Cluster, Routing, open_cluster
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.manifest import RunResult, totals, versions
from kbatch.engine.resume import check_output_apart, id_problems, unchanged_partitions
from kbatch.engine.run import Pipeline, current_step, run_partitions
from kbatch.io import storage
from kbatch.io.identity import combined_digest, params_key
from kbatch.io.lock import output_lock
from kbatch.io.reader import InputPlan, plan_input
from kbatch.io.writer import OutputDir

T = TypeVar("T")
# The outputs whose locks this context holds.
_held: ContextVar[frozenset[str]] = ContextVar("kbatch_held_locks", default=frozenset())
# Row-level errors (e.g. an analyzer rejecting a text) quoted in the manifest.
MAX_ERROR_EXAMPLES = 20
# Row numbers as ids cannot repeat or be missing.
NO_ID_PROBLEMS = {"duplicate_ids": 0, "null_ids": 0}


@dataclass(frozen=True)
class RunOptions:
    """Where the input is and how a command runs; the same for every command, passed whole."""

    text_col: str = "text"
    id_col: str | None = None
    partition_rows: int | None = None
    keep_cols: tuple[str, ...] = ()
    overwrite: bool = False
    cluster: ClusterConfig | str | os.PathLike[str] | None = None
    client: object = None
    report: str | os.PathLike[str] | None = None
    progress: bool = True
    log: TextIO = field(default=sys.stderr)

    def as_kwargs(self) -> dict:
        """The options as keyword arguments of a command (``dataclasses.asdict`` would copy the client)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Partitioned:
    """A partitioned command as the frame runs it.

    ``pipeline(cluster)`` builds its pipeline and the part metadata once the cluster is known
    (precision and threads depend on its workers); ``describe(record)`` turns one part's
    record into the manifest's description of the output (model, analyzer);
    ``finalize(directory)`` adds whole-output results (correlations) once all parts are
    written; ``reusable(cluster, part)`` keeps a complete part only when what was decided on
    the cluster, not in the params, still holds (precision ``auto``). ``extra_cols``,
    ``text_param`` and ``text_is_string`` are :func:`~kbatch.io.reader.plan_input`'s.
    """

    name: str
    params: dict
    pipeline: Callable[[Cluster], tuple[Pipeline, dict]]
    describe: Callable[[dict], dict] = lambda record: {}
    finalize: Callable[[str], dict] | None = None
    reusable: Callable[[Cluster, dict], bool] | None = None
    extra_cols: tuple[tuple[str, str], ...] = ()
    text_param: str = "text_col"
    text_is_string: bool = True
    check_duplicate_ids: bool = True
    label: str = "rows"


@contextmanager
def open_command(command: str, output: str | os.PathLike[str], options: RunOptions,
                 prepare: Callable[[], T] = lambda: None) -> Iterator[tuple[Cluster, T]]:
    """The frame: ``output`` locked, ``prepare()`` run (refusals come before any cluster
    starts), the cluster joined (``options.client``) or started, a performance report around
    the work when asked, the step named on the dashboard. Yields the cluster and what
    ``prepare`` returned."""
    parent = current_step.get()
    if parent is None or parent.rsplit(": ", 1)[-1] == command:  # a command's own second frame (match's matching) is the same step
        token = current_step.set(parent or command)
    else:
        token = current_step.set(f"{parent}: {command}")  # e.g. "matches: embed" inside a job
    try:
        with _locked(output):
            prepared = prepare()
            with connect(_cluster_config(options), options.client, options.log) as cluster, performance_report(options.report):
                yield cluster, prepared
    finally:
        current_step.reset(token)


@contextmanager
def _locked(output: str | os.PathLike[str]) -> Iterator[None]:
    """``output``'s lock, unless this command already holds it (``match`` locks its output, then
    matches into it in a frame of its own)."""
    path = storage.location(output)
    if path in _held.get():
        yield
        return
    token = _held.set(_held.get() | {path})
    try:
        with output_lock(output):
            yield
    finally:
        _held.reset(token)


def _cluster_config(options: RunOptions) -> ClusterConfig:
    return options.cluster if isinstance(options.cluster, ClusterConfig) else load_cluster_config(options.cluster)


def use_cluster_storage(options: RunOptions) -> None:
    """Open stores in this process with the cluster file's ``storage_options``, before a command
    reads or writes one itself (its inputs, last night's output); a client passed in came
    with its storage set up. A command checks a model it was given first: a hostile model is
    refused before any file of the user's is read."""
    if options.client is None:
        storage.configure(_cluster_config(options).storage_options)


def run_partitioned(command: Partitioned, source, output: str | os.PathLike[str], options: RunOptions,
                    started: float | None = None) -> RunResult:
    """Run ``command`` over the partitions of ``source`` not yet complete in ``output``.

    ``started`` (a ``perf_counter`` time) lets a command that did work before, such as
    embedding a match's sides, count it in the total.
    """
    started = started if started is not None else time.perf_counter()
    use_cluster_storage(options)
    plan = plan_input(source, options.text_col, options.id_col, options.partition_rows, command.extra_cols,
                      command.text_param, command.text_is_string, options.keep_cols)
    check_output_apart(output, source, [f["path"] for f in plan.fingerprint["files"]])
    params = {"command": command.name, "input": plan.fingerprint["paths_sha256"], "text_col": options.text_col,
              "id_col": options.id_col, "partition_rows": options.partition_rows, **command.params,
              **({"keep_cols": list(options.keep_cols)} if options.keep_cols else {})}
    key = params_key(params)
    out = OutputDir(output)
    with open_command(command.name, output, options, lambda: out.prepare(key, len(plan.pieces), options.overwrite)) as (cluster, done):
        verifying = time.perf_counter()
        done = unchanged_partitions(cluster, plan.pieces, done, options.log, command.reusable)
        seconds = {"cluster_start": cluster.start_seconds, "verify": time.perf_counter() - verifying}
        todo = [p for p in plan.pieces if p.index not in done]
        if todo:
            out.start_writing()
        processing = time.perf_counter()
        pipeline, metadata = command.pipeline(cluster)
        pipeline = pipeline.keeping(options.keep_cols, plan.hive_keys)
        sink = pipeline.sink(out.location, {"params": key, **metadata})
        records = run_partitions(cluster, todo, pipeline, sink, options.progress, command.label)
        seconds["processing"] = time.perf_counter() - processing
        seconds = {"total": time.perf_counter() - started, **seconds}
        parts = sorted([r["partition"] for r in records] + [m["partition"] for m in done.values()], key=lambda p: p["index"])
        manifest = {"command": command.name, "status": "complete", "params_key": key, "params": params,
                    "input": {**plan.fingerprint, "sha256": combined_digest([p["input_digest"] for p in parts])},
                    **_described(command, sink.output_schema(), records[0] if records else next(iter(done.values()))),
                    **_partitions(plan, records, done, parts),
                    **(id_problems(out, len(plan.pieces)) if options.id_col and command.check_duplicate_ids else NO_ID_PROBLEMS),
                    **_timing(seconds, sum(r["partition"]["rows"] for r in records)),
                    **(command.finalize(out.location) if command.finalize else {}),
                    "versions": versions(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        out.write_manifest(manifest)
        _warn_about_ids(manifest, options)
    return RunResult(storage.shown(output), manifest)


def _described(command: Partitioned, schema: Mapping[str, str], record: dict) -> dict:
    """The command's description of its output, and the written columns' types (with the
    vectors' real length where the part knows it)."""
    if "dimension" in record:
        schema = {name: kind.replace("[dim]", f"[{record['dimension']}]") for name, kind in schema.items()}
    return {**command.describe(record), "output_schema": dict(schema)}


def _partitions(plan: InputPlan, records: list[dict], done: dict[int, dict], parts: list[dict]) -> dict:
    return {"partitions_total": len(plan.pieces), "partitions_done": len(records), "partitions_reused": len(done),
            **totals(parts), "errors": [e for p in parts for e in p.get("errors", ())][:MAX_ERROR_EXAMPLES],
            "workers": sorted({str(p["worker"]) for p in parts if p.get("worker") is not None})}


def _timing(seconds: dict[str, float], processed_rows: int) -> dict:
    total, processing = seconds["total"], seconds["processing"]
    return {"seconds": {name: round(value, 3) for name, value in seconds.items()},
            "throughput_rows_per_s": {
                "total": round(processed_rows / total, 2) if total else 0.0,
                "processing": round(processed_rows / processing, 2) if processing and processed_rows else 0.0}}


def _warn_about_ids(manifest: dict, options: RunOptions) -> None:
    if manifest["duplicate_ids"]:
        repeated = f"{manifest['duplicate_ids']:,} rows repeat an id of column {options.id_col!r}"
        print(f"kbatch: warning: {repeated}; all were kept", file=options.log)
    if manifest["null_ids"]:
        print(f"kbatch: warning: {manifest['null_ids']:,} rows have no id (null in column {options.id_col!r}); all were kept",
              file=options.log)


@contextmanager
def connect(config: ClusterConfig, client, log) -> Iterator[Cluster]:
    """The cluster to run on: ``client``'s when given, else one started from ``config``."""
    if client is None:
        with open_cluster(config, log=log) as cluster:
            yield cluster
        return
    workers = client.scheduler_info(n_workers=-1)["workers"]
    torch_threads = config.torch_threads_per_worker(local_workers=None)  # its workers, their cores
    yield Cluster(client, Routing.from_workers(workers, torch_threads), client.dashboard_link, 0.0)


def performance_report(path):
    """A Dask performance report written to ``path`` around the work, or nothing."""
    if path is None:
        return contextlib.nullcontext()
    from distributed import performance_report

    if storage.is_url(path):
        return _uploaded_performance_report(os.fspath(path))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return performance_report(filename=str(path))


@contextmanager
def _uploaded_performance_report(url: str) -> Iterator[None]:
    """Dask writes its report to a local file: write it to a temporary one, then upload it."""
    from distributed import performance_report

    with tempfile.TemporaryDirectory() as folder:
        local = os.path.join(folder, storage.name_of(url))
        with performance_report(filename=local):
            yield
        storage.write_bytes(url, Path(local).read_bytes())
