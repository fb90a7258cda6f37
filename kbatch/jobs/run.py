"""``kbatch run JOB.yaml``: one night of a job, safe to call from cron, systemd or Airflow.

- one run per output: ``OUTPUT.lock`` is held for the whole run (a second run exits 8);
- all-or-nothing: a night is complete once ``OUTPUT/_run.json`` exists, and every reader
  (the next night, ``kbatch runs``, a rerun) takes only complete nights. On a local disk
  steps write into ``OUTPUT.partial``, renamed to ``OUTPUT`` when every step, ``_run.json``
  and ``report.html`` are written. An object store has no rename: steps write in place and
  ``_run.json`` is the commit marker, uploaded last (the record of an unfinished night is
  ``_run.partial.json``). A rerun of a finished night does nothing;
- resumable: a killed run leaves its steps' finished partitions; the rerun skips every one
  (each command's own resume), so its output equals an uninterrupted run's;
- incremental: with ``cache:`` every embedding reuses the vectors of texts seen before.
"""

from __future__ import annotations

import glob
import json
import os
import string
import sys
import time
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from kbatch.engine import monitor
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.frame import connect, performance_report
from kbatch.engine.run import current_step
from kbatch.errors import InputError, KbatchError, OutputConflictError
from kbatch.io import storage
from kbatch.io.lock import output_lock
from kbatch.jobs.report import write_run_report
from kbatch.jobs.spec import Job, Step, command_function

RUN_MANIFEST = "_run.json"
UNFINISHED_RUN = "_run.partial.json"  # on an object store: the record of a night not (yet) complete
SCORE_BINS = np.linspace(0.0, 1.0, 21)


@dataclass(frozen=True)
class Night:
    """Where a night is read (``root``) and where its steps write until it is complete."""

    root: str
    work: str

    @classmethod
    def of(cls, root: str) -> Night:
        return cls(root, root if storage.is_url(root) else f"{root}.partial")

    @property
    def in_place(self) -> bool:
        return self.work == self.root

    def record(self, run: dict) -> None:
        """Write the run manifest and report where the night is being built; in place, the
        manifest of a complete night is the commit marker and goes last."""
        write_run_report(storage.join(self.work, "report.html"), run)
        complete = run["status"] == "complete"
        name = UNFINISHED_RUN if self.in_place and not complete else RUN_MANIFEST
        storage.write_bytes(storage.join(self.work, name), (json.dumps(run, indent=2, ensure_ascii=False) + "\n").encode())
        if self.in_place and complete:
            storage.remove(storage.join(self.work, UNFINISHED_RUN))

    def publish(self) -> None:
        if not self.in_place:
            os.replace(self.work, self.root)


def run_job(job: Job, date: str, *, progress: bool = True, log: TextIO = sys.stderr) -> dict:
    """Run every step of ``job`` for ``date``; returns the run manifest (also in ``OUTPUT/_run.json``)."""
    # The cluster file's storage options, the job's over them, before the lock and the inputs are looked at.
    config = load_cluster_config(job.cluster).with_storage_options(job.storage_options)
    storage.configure(config.storage_options)
    night = Night.of(job.output_for(date))
    with output_lock(night.root):
        done = storage.join(night.root, RUN_MANIFEST)
        if storage.is_file(done):
            print(f"kbatch run: {job.name} {date} is already complete -> {night.root}", file=log)
            return json.loads(storage.read_bytes(done))
        inputs = job.inputs_for(date)
        _check_places(job, night, inputs)
        storage.make_dirs(night.work)
        run = {"job": job.name, "date": date, "job_file": job.file, "status": "running",
               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": [], "dashboard": None,
               "performance_report": "performance.html"}
        started = time.perf_counter()
        try:
            _run_steps(job, config, inputs, night, run, progress, log)
            run["status"] = "complete"
        except BaseException as exc:
            run.update(status="failed", error=_one_line(exc))
            raise
        finally:
            run.update(finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.perf_counter() - started, 3))
            night.record(run)
        night.publish()
    steps = len(run["steps"])
    report = storage.join(night.root, "report.html")
    print(f"kbatch run: {job.name} {date}: {steps} step{'s' if steps != 1 else ''} in {run['seconds']:.1f} s -> {night.root} "
          f"(report: {report})", file=log)
    return run


def _run_steps(job: Job, config: ClusterConfig, inputs: dict[str, str], night: Night, run: dict, progress: bool, log: TextIO) -> None:
    with connect(config, None, log) as cluster, performance_report(storage.join(night.work, "performance.html")):
        run["dashboard"] = cluster.dashboard_link
        page = monitor.install(cluster.client)
        if page:
            print(f"kbatch: progress of this run {page}", file=log)
        outputs: dict[str, str] = dict(inputs)
        earlier = previous_night(job, run["date"])
        for step in job.steps:
            print(f"kbatch run: step {step.name} ({step.command})", file=log)
            record = _run_step(step, outputs, night.work, job.cache, earlier, cluster.client, progress, log)
            record["output"] = storage.join(night.root, step.name)
            run["steps"].append(record)
            outputs[step.name] = storage.join(night.work, step.name)


def _run_step(
    step: Step, outputs: dict[str, str], work: str, cache: str | None, earlier: str | None, client, progress: bool, log: TextIO
) -> dict:
    function = command_function(step.command)
    target = _step_folder(work, step.name)
    options = {**step.options, "client": client, "progress": progress, "log": log}
    if cache is not None and step.command in ("embed", "match", "topics", "dedup"):
        options["cache"] = cache
    if earlier is not None and step.command in ("match", "topics", "dedup"):  # last night's matches to reuse, topic ids
        # to keep, kept rows whose decisions stand
        options["previous"] = storage.join(earlier, step.name)
    sources = {kind: outputs[name] for kind, name in step.sources.items()}
    token = current_step.set(step.name)
    start = time.perf_counter()
    try:
        if step.command == "match":
            result = function(sources["left"], sources.get("right"), target, **options)
        else:
            extra = {"embeddings": sources["embeddings"]} if "embeddings" in sources else {}
            result = function(sources["input"], target, **extra, **options)
    finally:
        current_step.reset(token)
    print(f"kbatch {result.summary()}", file=log)
    manifest = result.manifest
    counts = manifest.get("counts", {})
    record = {"name": step.name, "command": step.command, "status": "complete" if manifest["partitions_done"] else "reused",
              "rows": manifest["rows_in"], "rows_done": manifest["rows_done"], "seconds": round(time.perf_counter() - start, 3),
              "throughput_rows_per_s": manifest["throughput_rows_per_s"]["total"], "counts": counts}
    cached = _cache_counts(step, target, counts)
    if cached:
        record["cache"] = cached
    if step.command == "match":
        scores = storage.read_table(target, ["score"]).column("score").to_numpy()
        counts_per_bin, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=SCORE_BINS)
        record["score_histogram"] = {"edges": SCORE_BINS.round(2).tolist(), "counts": counts_per_bin.tolist()}
    if step.command == "topics":
        table = storage.read_table(storage.join(target, "topics.parquet")).to_pandas()
        record["topic_sizes"] = [{"topic": int(r.topic), "size": int(r.size), "keywords": list(r.keywords)} for r in table.itertuples()]
        record["metrics"] = manifest.get("metrics")
    return record


def previous_night(job: Job, date: str) -> str | None:
    """The latest complete night of ``job`` before ``date``, whose matches a night can reuse."""
    nights = [(night, path) for path in _nights_found(job.output)
              if (night := _night_of(job, path)) is not None and night < date]
    return max(nights)[1] if nights else None


def _nights_found(template: str) -> list[str]:
    """The folders the output template matches: ``{date}`` matches any name, every other
    character only itself."""
    pattern = "".join(glob.escape(text) + ("*" if field else "") for text, field, _, _ in string.Formatter().parse(template))
    return [path for path in storage.matching(pattern) if storage.is_dir(path)]


def _night_of(job: Job, path: str) -> str | None:
    """The date of a complete night of ``job`` at ``path``, or None: a copy (``2026-11-25.bak``),
    a night without its commit marker or another job's night that the glob also finds is not
    this job's output for its date."""
    try:
        run = json.loads(storage.read_bytes(storage.join(path, RUN_MANIFEST)))
    except (OSError, ValueError):  # no _run.json, or not JSON
        return None
    if not isinstance(run, dict) or run.get("status") != "complete" or run.get("job") != job.name:
        return None
    try:
        return run["date"] if job.output_for(run.get("date")) == storage.location(path) else None
    except InputError:  # no date, or not a date
        return None


def _check_places(job: Job, night: Night, inputs: dict[str, str]) -> None:
    """What a night writes must lie outside every input folder, whose files the next night
    would read as rows; the cache outlives the night, so it must lie outside the night's
    folder, which the final rename moves."""
    written = {"the night's folder": night.root, **({"the cache": job.cache} if job.cache else {})}
    for what, place in written.items():
        for name, path in inputs.items():
            if storage.is_dir(path) and storage.within(place, path):
                raise InputError(f"job {job.name}: {what} ({place}) lies inside input {name!r} ({path}), which would read its files")
    if job.cache and (storage.within(job.cache, night.root) or storage.within(job.cache, night.work)):
        raise InputError(f"job {job.name}: the cache ({job.cache}) lies inside the night's folder ({night.root}); put it beside the nights")


def _step_folder(work: str, name: str) -> str:
    """Where a step writes: inside the night's folder, whatever a link there points to."""
    target = storage.join(work, name)
    if not storage.within(target, work):
        raise OutputConflictError(f"step {name!r} would write to {storage.location(target)}, outside the night's folder {work}")
    return target


def _cache_counts(step: Step, target: str, counts: dict) -> dict | None:
    """Cache hits and misses of a step's embedding, wherever its embed runs wrote them."""
    if "cache_hits" in counts:
        return {"hits": counts["cache_hits"], "misses": counts["cache_misses"]}
    hits = misses = 0
    for manifest in storage.find_named(storage.join(target, "_embeddings"), "_kbatch.json"):
        found = json.loads(storage.read_bytes(manifest)).get("counts", {})
        hits, misses = hits + found.get("cache_hits", 0), misses + found.get("cache_misses", 0)
    return {"hits": hits, "misses": misses} if hits or misses else None


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, KbatchError) else f"{type(exc).__name__}: {text}"

