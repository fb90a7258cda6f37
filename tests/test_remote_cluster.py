"""kbatch against an existing cluster: `dask scheduler` and two `dask worker` processes."""

import json
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest


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
