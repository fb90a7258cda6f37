"""``kbatch run JOB.yaml``: one night of a job, safe to call from cron, systemd or Airflow.

- one run per output: ``OUTPUT.lock`` is held for the whole run (a second run exits 8);
- all-or-nothing: steps write into ``OUTPUT.partial``, renamed to ``OUTPUT`` only when
  every step, ``_run.json`` and ``report.html`` are written; a rerun of a finished night
  does nothing;
- resumable: a killed run leaves ``OUTPUT.partial``; the rerun skips every partition that
  was complete (each command's own resume), so its output equals an uninterrupted run's;
- incremental: with ``cache:`` every embedding reuses the vectors of texts seen before.
"""

from __future__ import annotations

import glob
import json
import os
import string
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np
import pyarrow.dataset as ds

from kbatch.engine import monitor
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.frame import connect, performance_report
from kbatch.engine.run import current_step
from kbatch.errors import InputError, KbatchError, OutputConflictError
from kbatch.io.lock import output_lock
from kbatch.io.storage import atomic_path
from kbatch.jobs.report import write_run_report
from kbatch.jobs.spec import Job, Step, command_function

RUN_MANIFEST = "_run.json"
SCORE_BINS = np.linspace(0.0, 1.0, 21)


def run_job(job: Job, date: str, *, progress: bool = True, log: TextIO = sys.stderr) -> dict:
    """Run every step of ``job`` for ``date``; returns the run manifest (also in ``OUTPUT/_run.json``)."""
    root = job.output_for(date)
    with output_lock(root):
        if (root / RUN_MANIFEST).is_file():
            print(f"kbatch run: {job.name} {date} is already complete -> {root}", file=log)
            return json.loads((root / RUN_MANIFEST).read_text(encoding="utf-8"))
        inputs = job.inputs_for(date)
        partial = root.with_name(f"{root.name}.partial")
        _check_places(job, root, partial, inputs)
        config = load_cluster_config(job.cluster)  # a bad cluster file fails before the night's folder exists
        partial.mkdir(parents=True, exist_ok=True)
        run = {"job": job.name, "date": date, "job_file": job.file, "status": "running",
               "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": [], "dashboard": None,
               "performance_report": "performance.html"}
        started = time.perf_counter()
        try:
            _run_steps(job, config, inputs, partial, root, run, progress, log)
            run["status"] = "complete"
        except BaseException as exc:
            run.update(status="failed", error=_one_line(exc))
            raise
        finally:
            run.update(finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(time.perf_counter() - started, 3))
            _write_run(partial, run)
        os.replace(partial, root)
    steps = len(run["steps"])
    print(f"kbatch run: {job.name} {date}: {steps} step{'s' if steps != 1 else ''} in {run['seconds']:.1f} s -> {root} "
          f"(report: {root / 'report.html'})", file=log)
    return run


def _run_steps(
    job: Job, config: ClusterConfig, inputs: dict[str, str], partial: Path, root: Path, run: dict, progress: bool, log: TextIO
) -> None:
    with connect(config, None, log) as cluster, performance_report(partial / "performance.html"):
        run["dashboard"] = cluster.dashboard_link
        page = monitor.install(cluster.client)
        if page:
            print(f"kbatch: progress of this run {page}", file=log)
        outputs: dict[str, str] = dict(inputs)
        earlier = previous_night(job, run["date"])
        for step in job.steps:
            print(f"kbatch run: step {step.name} ({step.command})", file=log)
            record = _run_step(step, outputs, partial, job.cache, earlier, cluster.client, progress, log)
            record["output"] = str(root / step.name)
            run["steps"].append(record)
            outputs[step.name] = str(partial / step.name)


def _run_step(
    step: Step, outputs: dict[str, str], partial: Path, cache: str | None, earlier: Path | None, client, progress: bool, log: TextIO
) -> dict:
    function = command_function(step.command)
    target = _step_folder(partial, step.name)
    options = {**step.options, "client": client, "progress": progress, "log": log}
    if cache is not None and step.command in ("embed", "match", "topics"):
        options["cache"] = cache
    if earlier is not None and step.command in ("match", "topics"):  # last night's matches to reuse, topic ids to keep
        options["previous"] = str(earlier / step.name)
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
        scores = ds.dataset(target, format="parquet").to_table(columns=["score"]).column("score").to_numpy()
        counts_per_bin, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=SCORE_BINS)
        record["score_histogram"] = {"edges": SCORE_BINS.round(2).tolist(), "counts": counts_per_bin.tolist()}
    if step.command == "topics":
        import pandas as pd

        table = pd.read_parquet(target / "topics.parquet")
        record["topic_sizes"] = [{"topic": int(r.topic), "size": int(r.size), "keywords": list(r.keywords)} for r in table.itertuples()]
        record["metrics"] = manifest.get("metrics")
    return record


def previous_night(job: Job, date: str) -> Path | None:
    """The latest complete night of ``job`` before ``date``, whose matches a night can reuse."""
    nights = [(night, path) for path in map(Path, glob.glob(_night_pattern(job.output)))
              if (night := _night_of(job, path)) is not None and night < date]
    return max(nights)[1] if nights else None


def _night_pattern(template: str) -> str:
    """The output template as a glob: ``{date}`` matches any name, every other character only itself."""
    return "".join(glob.escape(text) + ("*" if field else "") for text, field, _, _ in string.Formatter().parse(template))


def _night_of(job: Job, path: Path) -> str | None:
    """The date of a complete night of ``job`` at ``path``, or None: a copy (``2026-11-25.bak``)
    or another job's night that the glob also finds is not this job's output for its date."""
    try:
        run = json.loads((path / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no _run.json, or not JSON
        return None
    if not isinstance(run, dict) or run.get("status") != "complete" or run.get("job") != job.name:
        return None
    try:
        return run["date"] if job.output_for(run.get("date")) == path else None
    except InputError:  # no date, or not a date
        return None


def _check_places(job: Job, root: Path, partial: Path, inputs: dict[str, str]) -> None:
    """What a night writes must lie outside every input folder, whose files the next night
    would read as rows; the cache outlives the night, so it must lie outside the night's
    folder, which the final rename moves."""
    written = {"the night's folder": root, **({"the cache": Path(job.cache)} if job.cache else {})}
    for what, place in written.items():
        for name, path in inputs.items():
            if Path(path).is_dir() and _within(place, Path(path)):
                raise InputError(f"job {job.name}: {what} ({place}) lies inside input {name!r} ({path}), which would read its files")
    if job.cache and (_within(Path(job.cache), root) or _within(Path(job.cache), partial)):
        raise InputError(f"job {job.name}: the cache ({job.cache}) lies inside the night's folder ({root}); put it beside the nights")


def _within(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _step_folder(partial: Path, name: str) -> Path:
    """Where a step writes: inside the night's partial folder, whatever a link there points to."""
    target = partial / name
    if not _within(target, partial):
        raise OutputConflictError(f"step {name!r} would write to {target.resolve()}, outside the night's folder {partial}")
    return target


def _cache_counts(step: Step, target: Path, counts: dict) -> dict | None:
    """Cache hits and misses of a step's embedding, wherever its embed runs wrote them."""
    if "cache_hits" in counts:
        return {"hits": counts["cache_hits"], "misses": counts["cache_misses"]}
    hits = misses = 0
    for manifest in target.glob("_embeddings/**/_kbatch.json"):
        found = json.loads(manifest.read_text(encoding="utf-8")).get("counts", {})
        hits, misses = hits + found.get("cache_hits", 0), misses + found.get("cache_misses", 0)
    return {"hits": hits, "misses": misses} if hits or misses else None


def _write_run(directory: Path, run: dict) -> None:
    with atomic_path(directory / RUN_MANIFEST) as tmp:
        tmp.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_run_report(directory / "report.html", run)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, KbatchError) else f"{type(exc).__name__}: {text}"

