"""Nightly jobs on a real cluster, including the ways a night goes wrong: a worker killed,
the run itself SIGKILLed, two runs at once, 1% of the catalog changed, a full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from kbatch.cli import main
from kbatch.commands.embed import embed
from kbatch.commands.match import match
from kbatch.engine.sink import PartitionReport, PartitionSink
from kbatch.errors import InputError, OutputLockedError
from kbatch.io.lock import output_lock
from kbatch.jobs.history import find_runs, format_runs
from kbatch.jobs.run import run_job
from kbatch.jobs.spec import load_job
from kbatch.stages.base import ID
from kbatch.vectors.columns import vector_matrix

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_job(tmp_path: Path, name: str, inputs: dict, steps: list, *, cluster=None, cache: bool = True) -> Path:
    output = str(tmp_path / "out" / name / "{date}")
    job = {"name": name, "inputs": {k: str(v) for k, v in inputs.items()}, "steps": steps, "output": output}
    if cache:
        job["cache"] = str(tmp_path / f"cache-{name}")
    if cluster is not None:
        (tmp_path / "cluster.yaml").write_text(f"address: {cluster.client.scheduler.address}\n")
        job["cluster"] = str(tmp_path / "cluster.yaml")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job, allow_unicode=True))
    return path


def matching_job(tmp_path: Path, cluster, offers: Path) -> Path:
    step = {"name": "matches", "command": "match", "left": "offers", "right": "catalog",
            "options": {"text_col": "title", "id_col": "sku", "top_k": 3}}
    return write_job(tmp_path, "nightly", {"offers": offers, "catalog": EXAMPLES / "catalog.parquet"}, [step], cluster=cluster)


def vectors_by_id(directory: Path) -> tuple[list, np.ndarray]:
    table = pq.read_table(directory, columns=["id", "embedding"])
    return table.column("id").to_pylist(), vector_matrix(table.column("embedding").combine_chunks())[0]


def assert_same_matches(found: Path, expected: Path) -> None:
    """The same pairs at the same ranks, scores equal to 1e-6: re-searching 4 offers and
    searching 420 multiply matrices of other shapes, whose BLAS blocking sums in another
    order (scores seen up to 2.4e-7 apart, depending on the machine's BLAS)."""
    got, want = pq.read_table(found), pq.read_table(expected)
    assert got.schema.equals(want.schema)
    assert got.drop_columns(["score"]).equals(want.drop_columns(["score"]))
    assert np.allclose(got.column("score").to_numpy(), want.column("score").to_numpy(), rtol=0, atol=1e-6)


def test_job_files_fail_on_the_line_that_is_wrong(tmp_path):
    step = {"name": "emb", "command": "embed", "input": "offers"}
    good = {"name": "j", "inputs": {"offers": "missing-{date}.parquet"}, "output": "out/{date}", "steps": [step]}
    cases = [
        ({**good, "shedule": {}}, "unknown key 'shedule'"),
        ({**good, "steps": [{**step, "input": "offer"}]}, "input 'offer' is neither an input nor an earlier step"),
        ({**good, "steps": [{**step, "options": {"top_k": 5}}]}, "embed has no option 'top_k'"),
        ({**good, "steps": [{**step, "command": "match"}]}, "match takes left, right, not 'input'"),
        ({**good, "schedule": {"cron": "0 25 * * *"}}, "cron expression '0 25 \\* \\* \\*' is invalid"),
    ]
    for number, (content, message) in enumerate(cases):
        path = tmp_path / f"job{number}.yaml"
        path.write_text(yaml.safe_dump(content))
        with pytest.raises(InputError, match=message):
            load_job(path)
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(good))
    with pytest.raises(InputError, match=r"input 'offers' \(missing-2026-11-26.parquet\) does not exist"):
        load_job(path).inputs_for("2026-11-26")


def test_second_night_embeds_only_the_changed_rows(tmp_path, cluster):
    offers = pd.read_parquet(EXAMPLES / "offers.parquet")
    offers.to_parquet(tmp_path / "offers-2026-11-25.parquet")
    changed = offers.copy()
    changed.loc[[5, 50, 100, 300], "title"] = changed.loc[[5, 50, 100, 300], "title"] + " 리퍼"  # 1% of 420 offers
    changed.to_parquet(tmp_path / "offers-2026-11-26.parquet")
    job = load_job(matching_job(tmp_path, cluster, tmp_path / "offers-{date}.parquet"))

    with open(os.devnull, "w") as quiet:
        first = run_job(job, "2026-11-25", progress=False, log=quiet)
        second = run_job(job, "2026-11-26", progress=False, log=quiet)
        again = run_job(job, "2026-11-26", progress=False, log=quiet)  # a finished night is not run again
    assert first["steps"][0]["cache"] == {"hits": 0, "misses": 420 + 200}
    assert second["steps"][0]["cache"] == {"hits": 416 + 200, "misses": 4}

    night = tmp_path / "out" / "nightly" / "2026-11-26"
    left = sorted(p.name for p in night.parent.iterdir() if not p.name.endswith(".lock"))
    assert left == ["2026-11-25", "2026-11-26"]  # no .partial left
    # Matching searched only the 4 changed offers; the other 416 kept night 1's matches, and
    # the night's output means what matching everything again means.
    assert "kept_from_previous" not in first["steps"][0]["counts"] and second["steps"][0]["counts"]["kept_from_previous"] == 416
    fresh = match(tmp_path / "offers-2026-11-26.parquet", EXAMPLES / "catalog.parquet", tmp_path / "fresh", text_col="title", id_col="sku",
                  top_k=3, client=cluster.client, progress=False, cache=tmp_path / "cache-nightly")
    assert_same_matches(night / "matches", fresh.output)
    assert json.loads((night / "_run.json").read_text())["status"] == "complete"
    assert len(pd.read_parquet(night / "matches")) == 420 * 3
    report = (night / "report.html").read_text()
    assert "matches" in report and "99.4%" in report  # 616 of 620 from the cache
    page = cluster.dashboard_link.replace("/status", "/kbatch.json")
    steps = {s["step"]: s for s in json.load(urllib.request.urlopen(page, timeout=10))["steps"]}  # the dashboard's kbatch page
    assert steps["matches: match"]["rows_done"] == steps["matches: match"]["rows_total"] == 420 and steps["matches: match"]["finished"]
    runs = find_runs(tmp_path / "out")
    assert [r["date"] for r in runs] == ["2026-11-25", "2026-11-26"] and "complete" in format_runs(runs)
    assert again["finished_at"] == second["finished_at"]


def test_a_second_run_of_the_same_night_exits_with_code_8(tmp_path, cluster):
    job = matching_job(tmp_path, cluster, EXAMPLES / "offers.parquet")
    with output_lock(tmp_path / "out" / "nightly" / "2026-11-26"):
        done = subprocess.run([sys.executable, "-m", "kbatch", "run", str(job), "--date", "2026-11-26"],
                              capture_output=True, text=True, timeout=120)
        with pytest.raises(OutputLockedError, match="is being written by another kbatch run"):
            run_job(load_job(job), "2026-11-26", progress=False)
    assert done.returncode == 8
    assert done.stderr.strip().startswith("kbatch: error: ") and "another kbatch run (pid" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def unique_reviews(tmp_path: Path, rows: int) -> Path:
    reviews = pd.read_parquet(EXAMPLES / "reviews.parquet").drop_duplicates("text").head(rows)
    path = tmp_path / "reviews.parquet"
    reviews.to_parquet(path, row_group_size=20)
    return path


def test_sigkilled_run_resumes_to_the_same_output(tmp_path, cluster):
    reviews = unique_reviews(tmp_path, 300)
    step = [{"name": "vectors", "command": "embed", "input": "reviews", "options": {"id_col": "review_id"}}]
    killed = write_job(tmp_path, "killed", {"reviews": reviews}, step)
    partial = tmp_path / "out" / "killed" / "2026-11-26.partial" / "vectors"
    run = subprocess.Popen([sys.executable, "-m", "kbatch", "run", str(killed), "--date", "2026-11-26", "--no-progress"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(partial.glob("part-*.parquet"))) < 3 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    written = len(list(partial.glob("part-*.parquet")))
    assert 3 <= written < 15 and not (tmp_path / "out" / "killed" / "2026-11-26").exists()

    with open(tmp_path / "cluster.yaml", "w") as handle:
        handle.write(f"address: {cluster.client.scheduler.address}\n")
    spec = load_job(killed)
    resumed = run_job(replace(spec, cluster=str(tmp_path / "cluster.yaml")), "2026-11-26", progress=False)
    assert resumed["steps"][0]["status"] == "complete"
    uninterrupted = load_job(write_job(tmp_path, "straight", {"reviews": reviews}, step, cluster=cluster))
    run_job(uninterrupted, "2026-11-26", progress=False)
    ids, vectors = vectors_by_id(tmp_path / "out" / "killed" / "2026-11-26" / "vectors")
    same_ids, same_vectors = vectors_by_id(tmp_path / "out" / "straight" / "2026-11-26" / "vectors")
    assert ids == same_ids and len(ids) == 300 and np.array_equal(vectors, same_vectors)


def test_a_killed_worker_loses_no_row_and_repeats_none(tmp_path):
    from distributed import Client, LocalCluster

    reviews = unique_reviews(tmp_path, 300)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as local, Client(local) as client:
        result: dict = {}
        run = threading.Thread(target=lambda: result.update(done=embed(reviews, tmp_path / "vectors", id_col="review_id",
                                                                          partition_rows=10, client=client, progress=False)))
        run.start()
        while not list((tmp_path / "vectors").glob("part-*.parquet")):
            time.sleep(0.1)
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        run.join(timeout=300)
    ids, _ = vectors_by_id(tmp_path / "vectors")
    assert result["done"].manifest["rows_done"] == 300
    assert sorted(ids) == sorted(pd.read_parquet(reviews).review_id) and len(set(ids)) == 300


def test_the_cache_gives_the_vectors_encoding_gives(tmp_path, cluster):
    reviews = unique_reviews(tmp_path, 60)
    options = {"id_col": "review_id", "client": cluster.client, "progress": False, "cache": tmp_path / "cache"}
    cold = embed(reviews, tmp_path / "cold", **options)
    warm = embed(reviews, tmp_path / "warm", **options)
    assert cold.manifest["counts"]["cache_misses"] == 60 and warm.manifest["counts"]["cache_hits"] == 60
    assert np.array_equal(vectors_by_id(tmp_path / "cold")[1], vectors_by_id(tmp_path / "warm")[1])
    raw = embed(reviews, tmp_path / "raw", normalize=False, **options)  # raw vectors are cached: any normalization reuses them
    assert raw.manifest["counts"]["cache_hits"] == 60


def test_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    import pyarrow as pa

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(args[1]))

    monkeypatch.setattr(pq.ParquetWriter, "write_table", lambda writer, table: full(writer, tmp_path / "part-00000.parquet"))
    with pytest.raises(OSError):
        PartitionSink(str(tmp_path), {"id": ID}).write(pa.table({"id": [1]}), PartitionReport(0, 1, "digest"))
    assert list(tmp_path.iterdir()) == []

    def embed_on_full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "out/emb/part-00000.parquet")

    monkeypatch.setattr("kbatch.commands.embed.embed", embed_on_full_disk)
    assert main(["embed", str(EXAMPLES / "reviews.parquet"), "-o", str(tmp_path / "emb")]) == 4
    message = capsys.readouterr().err.strip()
    assert "\n" not in message
    assert message.startswith("kbatch: error: cannot write out/emb/part-00000.parquet: No space left on device; "
                              "nothing incomplete was left under a final name (details: ")
