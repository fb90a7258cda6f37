"""kbatch against an existing cluster: `dask scheduler` and two `dask worker` processes."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kbatch import embed
from kbatch.engine.config import ClusterConfig
from kbatch.io import storage
from kbatch.vectors.columns import vector_matrix


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler_address(tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for name in ("cpu-1", "cpu-2"):
        processes.append(subprocess.Popen(
            ["dask", "worker", address, "--nthreads", "1", "--resources", "CPU=1", "--name", name, "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        from distributed import Client

        deadline = time.time() + 60
        with Client(address, timeout="30s") as client:
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.time() < deadline, "workers did not join the scheduler"
                time.sleep(0.5)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


@pytest.mark.cluster
def test_embed_runs_on_an_existing_scheduler(tmp_path, reviews_file, scheduler_address):
    cluster_file = tmp_path / "cluster.yaml"
    cluster_file.write_text(f"address: {scheduler_address}\n")
    done = subprocess.run(
        [sys.executable, "-m", "kbatch", "embed", reviews_file, "-o", tmp_path / "emb", "--id-col", "review_id",
         "--partition-rows", "50", "--cluster", cluster_file, "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "300 rows" in done.stdout
    out = pd.read_parquet(tmp_path / "emb")
    assert len(out) == 300 and out["embedding"].notna().all()
    manifest = json.loads((tmp_path / "emb" / "_kbatch.json").read_text())
    assert manifest["partitions_done"] == 6
    assert set(manifest["workers"]) == {"cpu-1", "cpu-2"}


@pytest.mark.cluster
def test_a_shared_cluster_keeps_none_of_kbatchs_models_after_a_command(tmp_path, reviews, scheduler_address):
    from distributed import Client

    from kbatch import caches, embed
    from kbatch.engine.config import ClusterConfig

    reviews.head(40).to_parquet(tmp_path / "reviews.parquet")
    embed(tmp_path / "reviews.parquet", tmp_path / "emb", cluster=ClusterConfig(address=scheduler_address), progress=False)
    with Client(scheduler_address, timeout="30s") as client:
        assert set(client.run(caches.held).values()) == {0}  # no tokenizer, encoder or row group left on the workers
        assert "kbatch-caches" not in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))


@pytest.fixture
def a_worker_elsewhere(tmp_path_factory, s3):
    """A scheduler and one ``dask worker`` started in a directory of its own with a HOME of
    its own (no ~/.cache/kbatch, no ~/.cache/huggingface): it shares the machine with the
    client, nothing else. It reaches S3 through the environment, as the client does.
    Yields the scheduler's address and the worker's HOME and directory."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KBATCH_", "HF_HOME", "XDG_"))}
    env["HOME"] = str(tmp_path_factory.mktemp("worker-home"))
    cwd = tmp_path_factory.mktemp("worker-cwd")
    processes = [subprocess.Popen(["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                 subprocess.Popen(["dask", "worker", address, "--nthreads", "1", "--resources", "CPU=1", "--name", "elsewhere",
                                   "--host", "127.0.0.1"], cwd=cwd, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for_workers(address, 1)
        yield address, [Path(env["HOME"]), cwd]
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def wait_for_workers(address: str, n: int) -> None:
    from distributed import Client

    deadline = time.time() + 60
    with Client(address, timeout="30s") as client:
        while len(client.scheduler_info()["workers"]) < n:
            assert time.time() < deadline, "workers did not join the scheduler"
            time.sleep(0.5)


@pytest.mark.cluster
@pytest.mark.parametrize("output", ["s3", "out/emb"])
def test_a_worker_in_another_directory_with_another_home_completes_the_run(tmp_path, reviews, s3, a_worker_elsewhere, output,
                                                                           monkeypatch):
    """The client resolves what the worker needs (a relative input and output, the use-m3
    model built under the client's HOME) to absolute locations before submitting anything:
    the worker finds them all, and writes nothing of its own to its HOME or directory."""
    address, worker_dirs = a_worker_elsewhere
    monkeypatch.chdir(tmp_path)
    Path("data").mkdir()
    reviews.head(60).to_parquet("data/reviews.parquet", row_group_size=20)
    # As many torch threads as the local run's one worker has, so the sums run in the same order.
    Path("cluster.yaml").write_text(f"address: {address}\ntorch_threads: {os.cpu_count()}\n")
    target = s3.path("emb") if output == "s3" else output

    done = subprocess.run([sys.executable, "-m", "kbatch", "embed", "data/reviews.parquet", "-o", target, "--id-col", "review_id",
                           "--partition-rows", "20", "--cluster", "cluster.yaml", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "KBATCH_LOG_DIR": str(tmp_path / "logs")})

    assert done.returncode == 0, done.stderr
    assert [list(directory.iterdir()) for directory in worker_dirs] == [[], []]
    local = embed("data/reviews.parquet", tmp_path / "local", id_col="review_id", partition_rows=20,
                  cluster=ClusterConfig(n_workers=1, dashboard_address=":0"), progress=False)
    elsewhere, here = pq.read_table(target), pq.read_table(local.output)
    assert elsewhere.column("id").to_pylist() == here.column("id").to_pylist() == reviews.head(60).review_id.tolist()
    assert np.array_equal(vector_matrix(elsewhere.column("embedding").combine_chunks())[0],
                          vector_matrix(here.column("embedding").combine_chunks())[0])
    manifest = json.loads(storage.read_bytes(storage.join(storage.location(target), "_kbatch.json")))
    assert manifest["status"] == "complete" and manifest["workers"] == ["elsewhere"]
