"""``kbatch runs DIR``: the nights a job has run, read from their ``_run.json`` files."""

from __future__ import annotations

import json
import os

from kbatch.io import storage

# A night's record: its commit marker, and on an object store the record of a night not complete.
RECORDS = ("_run.json", "_run.partial.json")


def find_runs(directory: str | os.PathLike[str]) -> list[dict]:
    """Every run manifest under ``directory`` (local or a URL): finished nights, and unfinished
    ones (``.partial`` folders, ``_run.partial.json`` on a store), oldest first."""
    runs = []
    for name in RECORDS:
        for path in storage.find_named(os.fspath(directory), name):
            try:
                run = json.loads(storage.read_bytes(path))
            except (OSError, json.JSONDecodeError):
                continue
            runs.append({**run, "path": storage.parent_of(path)})
    return sorted(runs, key=lambda r: (r.get("date", ""), r.get("started_at", "")))


def format_runs(runs: list[dict]) -> str:
    """One line per run: date, job, status, steps, rows, duration, where."""
    if not runs:
        return "no runs found"
    lines = [f"{'date':10}  {'job':28}  {'status':8}  {'steps':>5}  {'rows':>10}  {'seconds':>8}  output"]
    for run in runs:
        steps = run.get("steps", [])
        rows = sum(s.get("rows_done", 0) for s in steps)
        lines.append(f"{run.get('date', '?'):10}  {run.get('job', '?')[:28]:28}  {run.get('status', '?'):8}  {len(steps):>5}  "
                     f"{rows:>10,}  {run.get('seconds', 0):>8.1f}  {run['path']}")
    return "\n".join(lines)
