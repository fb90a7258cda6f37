"""Nightly jobs whose inputs, nights and cache live on object storage (a real S3 server on
127.0.0.1, tests/s3.py). A store has no rename, so a night is written in place and is
complete only once its commit marker, ``_run.json``, exists: every reader (the next night,
``kbatch runs``, a rerun) honours it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kbatch.errors import InputError
from kbatch.jobs.history import find_runs, format_runs
from kbatch.jobs.run import previous_night, run_job
from kbatch.jobs.spec import load_job

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def put(bucket, key: str, data: bytes) -> str:
    bucket.fs.pipe(bucket.path(key), data)
    return bucket.path(key)


def parquet_bytes(path: Path) -> bytes:
    return path.read_bytes()


def nightly_job(tmp_path: Path, bucket, **extra) -> Path:
    """Embed the night's offers, then match them to the catalog: everything on the bucket."""
    (tmp_path / "cluster.yaml").write_text("n_workers: 1\ndashboard_address: ':0'\n")
    job = {
        "name": "nightly_s3",
        "cluster": str(tmp_path / "cluster.yaml"),
        "cache": bucket.path("cache"),
        "inputs": {"offers": bucket.path("offers/dt={date}/part-0.parquet"), "catalog": bucket.path("catalog/latest.parquet")},
        "steps": [
            {"name": "offer_vectors", "command": "embed", "input": "offers", "options": {"text_col": "title", "id_col": "sku"}},
            {"name": "matches", "command": "match", "left": "offers", "right": "catalog",
             "options": {"text_col": "title", "id_col": "sku", "top_k": 3}},
        ],
        "output": bucket.path("nights/{date}"),
        **extra,
    }
    path = tmp_path / "nightly_s3.yaml"
    path.write_text(yaml.safe_dump(job, allow_unicode=True))
    return path


def test_a_night_on_s3_is_complete_or_absent_and_the_next_night_builds_on_it(tmp_path, s3):
    offers = parquet_bytes(EXAMPLES / "offers.parquet")
    for night in ("2026-11-25", "2026-11-26"):
        put(s3, f"offers/dt={night}/part-0.parquet", offers)
    put(s3, "catalog/latest.parquet", b"PAR1 this is not a Parquet file")  # last night's export broke
    job = load_job(nightly_job(tmp_path, s3))
    quiet = io.StringIO()

    with pytest.raises(InputError, match=r"catalog/latest\.parquet"):
        run_job(job, "2026-11-25", progress=False, log=quiet)
    night = s3.path("nights/2026-11-25")
    assert s3.fs.exists(f"{night}/offer_vectors/_kbatch.json")  # the first step finished, in place
    assert not s3.fs.exists(f"{night}/_run.json")  # but the night is not complete: no commit marker
    assert previous_night(job, "2026-11-26") is None  # so the next night does not build on it
    failed = find_runs(s3.path("nights"))
    assert [(r["date"], r["status"]) for r in failed] == [("2026-11-25", "failed")]
    assert "failed" in format_runs(failed)

    put(s3, "catalog/latest.parquet", parquet_bytes(EXAMPLES / "catalog.parquet"))  # the export is fixed; rerun the night
    first = run_job(job, "2026-11-25", progress=False, log=quiet)
    steps = {step["name"]: step for step in first["steps"]}
    assert steps["offer_vectors"]["status"] == "reused" and steps["matches"]["status"] == "complete"
    assert s3.fs.exists(f"{night}/_run.json") and s3.fs.exists(f"{night}/report.html")
    assert steps["matches"]["output"] == f"{night}/matches"
    assert len(pd.read_parquet(f"{night}/matches")) == 420 * 3

    assert previous_night(job, "2026-11-26") == night
    second = run_job(job, "2026-11-26", progress=False, log=quiet)
    matches = {step["name"]: step for step in second["steps"]}["matches"]
    assert matches["counts"]["kept_from_previous"] == 420  # same offers, same catalog: last night's matches, read from S3
    assert matches["cache"]["hits"] > 0  # the embedding cache on S3 served the repeated titles
    pd.testing.assert_frame_equal(pd.read_parquet(s3.path("nights/2026-11-26/matches")), pd.read_parquet(f"{night}/matches"))
    assert run_job(job, "2026-11-26", progress=False, log=quiet)["finished_at"] == second["finished_at"]  # done: not run again
    assert [(r["date"], r["status"]) for r in find_runs(s3.path("nights"))] == [("2026-11-25", "complete"), ("2026-11-26", "complete")]


def test_storage_options_in_the_job_file_reach_the_client_and_the_workers(tmp_path, s3):
    """No endpoint in the environment: the job file's ``storage_options`` alone send the
    client and the spawned workers to the S3 server."""
    put(s3, "offers/dt=2026-11-26/part-0.parquet", parquet_bytes(EXAMPLES / "offers.parquet"))
    put(s3, "catalog/latest.parquet", parquet_bytes(EXAMPLES / "catalog.parquet"))
    job = nightly_job(tmp_path, s3, storage_options={"s3": {"endpoint_url": s3.endpoint}})
    environment = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}

    done = subprocess.run([sys.executable, "-m", "kbatch", "run", str(job), "--date", "2026-11-26", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=environment)

    assert done.returncode == 0, done.stderr
    assert s3.fs.exists(s3.path("nights/2026-11-26/_run.json"))
    assert len(pd.read_parquet(s3.path("nights/2026-11-26/matches"))) == 420 * 3


def test_a_job_file_on_s3_runs_like_a_local_one(tmp_path, s3):
    put(s3, "offers/dt=2026-11-26/part-0.parquet", parquet_bytes(EXAMPLES / "offers.parquet"))
    put(s3, "catalog/latest.parquet", parquet_bytes(EXAMPLES / "catalog.parquet"))
    local = nightly_job(tmp_path, s3)
    remote = put(s3, "jobs/nightly_s3.yaml", local.read_bytes())
    assert load_job(remote) == load_job(local).__class__(**{**load_job(local).__dict__, "file": remote})
