"""The GPU path, tested without a GPU: encode tasks go to workers that advertise ``GPU``,
tokenizing stays on ``CPU`` workers, reduced precision keeps the vectors, an out-of-memory
error on the device becomes a smaller batch, and GPU workers are started only when asked
and possible."""

from __future__ import annotations

import io
import subprocess
import sys
import types

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from kbatch.commands.embed import embed
from kbatch.commands.embedding import Embedding
from kbatch.engine.cluster import Routing, _start_gpu_workers
from kbatch.engine.config import ClusterConfig, visible_devices
from kbatch.errors import ClusterError
from kbatch.models.batching import OutOfMemory
from kbatch.models.encoders import EncoderSettings, SentenceEncoder
from kbatch.models.resolve import resolve_model
from kbatch.vectors.columns import vector_matrix


def vectors(directory) -> tuple[list, np.ndarray]:
    table = pq.read_table(directory, columns=["id", "embedding"])
    return table.column("id").to_pylist(), vector_matrix(table.column("embedding").combine_chunks())[0]


@pytest.fixture(scope="module")
def cpu_and_fake_gpu_workers():
    """One CPU worker (resources CPU=1) and one plain worker that advertises GPU=1."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, resources={"CPU": 1}, dashboard_address=":0") as local:
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", local.scheduler_address, "--resources", "GPU=1",
                                   "--nthreads", "1", "--name", "fake-gpu", "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Client(local) as client:
                client.wait_for_workers(2, timeout=120)
                yield client
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def test_encoding_runs_on_gpu_workers_and_tokenizing_on_cpu_workers(tmp_path, reviews, cpu_and_fake_gpu_workers):
    from distributed import get_task_stream

    client = cpu_and_fake_gpu_workers
    reviews.head(60).to_parquet(tmp_path / "reviews.parquet", row_group_size=20)
    with get_task_stream(client) as stream:
        result = embed(tmp_path / "reviews.parquet", tmp_path / "emb", precision="fp32", client=client, progress=False)
    names = {address: info["name"] for address, info in client.scheduler_info(n_workers=-1)["workers"].items()}

    def ran_on(task: str) -> set[str]:
        return {names[done["worker"]] for done in stream.data if done["key"].startswith(f"kbatch-{task}-")}

    assert ran_on("step1") == {"fake-gpu"}  # every partition was encoded there
    assert ran_on("prepare") and "fake-gpu" not in ran_on("prepare") | ran_on("finish")  # read, tokenized, written on CPU
    assert "fake-gpu" not in result.manifest["workers"]
    ids, found = vectors(tmp_path / "emb")
    plain, expected = vectors(embed(tmp_path / "reviews.parquet", tmp_path / "cpu-only", precision="fp32", progress=False,
                                    cluster=ClusterConfig(dashboard_address=":0", gpu_workers=0), log=io.StringIO()).output)
    assert ids == plain and np.allclose(found, expected, atol=1e-5)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_keeps_the_vectors_and_their_order(tmp_path, reviews, cluster, precision):
    reviews.head(40).to_parquet(tmp_path / "reviews.parquet", row_group_size=20)
    full = embed(tmp_path / "reviews.parquet", tmp_path / "fp32", precision="fp32", client=cluster.client, progress=False)
    reduced = embed(tmp_path / "reviews.parquet", tmp_path / precision, precision=precision, client=cluster.client, progress=False)
    ids, exact = vectors(full.output)
    same_ids, approximate = vectors(reduced.output)
    assert ids == same_ids
    cosines = np.sum(exact * approximate, axis=1)
    assert cosines.min() > 0.98 and cosines.mean() > 0.995  # README: bf16 mean 0.999, lowest 0.98 (use-m3-ko: 0.988 here)
    assert pq.read_schema(next((tmp_path / precision).glob("part-*.parquet"))).metadata[b"kbatch"].find(precision.encode()) > 0


def test_device_out_of_memory_becomes_a_smaller_batch(model_path, monkeypatch):
    encoder = SentenceEncoder(EncoderSettings(model_path))
    real = encoder.transformer

    def small_batches_only(features):
        if features["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real(features)

    monkeypatch.setattr(encoder, "transformer", small_batches_only)
    ids = np.array([[101, 2000, 102], [101, 2001, 102], [101, 2002, 102]])
    with pytest.raises(OutOfMemory, match="batch of 3 x 3 tokens did not fit"):
        encoder(ids, np.ones_like(ids))
    assert encoder(ids[:2], np.ones_like(ids[:2])).shape == (2, encoder.dimension)
    assert encoder.batch_limits() == (1024, 256)  # on CPU: the measured constants


def test_gpu_workers_are_started_only_when_asked_and_possible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert visible_devices() == ["0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_devices() == [] and ClusterConfig().local_gpus() == 0
    assert _start_gpu_workers(ClusterConfig(), "tcp://127.0.0.1:1", io.StringIO()) is None
    with pytest.raises(ClusterError, match="asks for 1 GPU worker"):
        ClusterConfig(gpu_workers=1).local_gpus()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # not installed
    log = io.StringIO()
    assert _start_gpu_workers(ClusterConfig(), "tcp://127.0.0.1:1", log) is None
    assert "1 GPU(s) visible but dask-cuda is not installed; encoding on CPU workers" in log.getvalue()
    with pytest.raises(ClusterError, match=r"gpu_workers needs dask-cuda: pip install 'kbatch\[gpu\]'"):
        _start_gpu_workers(ClusterConfig(gpu_workers=1), "tcp://127.0.0.1:1", log)


def test_the_gpu_worker_process_starts_with_dasks_worker_environment(monkeypatch):
    """Dask's pre-spawn environment holds numbers (``OMP_NUM_THREADS: 1``); the first run on an
    H200 failed here before any worker started."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setitem(sys.modules, "dask_cuda", types.ModuleType("dask_cuda"))
    workers = _start_gpu_workers(ClusterConfig(), "tcp://127.0.0.1:1", io.StringIO())
    try:
        assert workers.gpus == 1 and workers.process.args[:4] == [sys.executable, "-m", "dask", "cuda"]
    finally:
        workers.stop()


class NoWorkersYet:
    def scheduler_info(self, n_workers: int) -> dict:
        return {"workers": {}}


def test_a_gpu_worker_that_dies_while_starting_fails_at_once_with_its_last_line(monkeypatch):
    """Here ``dask cuda`` is not a command (no dask-cuda), so the process exits at once; kbatch
    says so in one line instead of waiting minutes for workers that never join."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setitem(sys.modules, "dask_cuda", types.ModuleType("dask_cuda"))
    workers = _start_gpu_workers(ClusterConfig(), "tcp://127.0.0.1:1", io.StringIO())
    try:
        with pytest.raises(ClusterError, match=r"the dask-cuda worker exited with code [1-9]\d* before joining: .*cuda"):
            workers.wait_joined(NoWorkersYet(), 1, timeout=60)
    finally:
        workers.stop()



@pytest.mark.parametrize(("model", "on_gpus"), [("all-MiniLM-L6-v2", "fp16"), ("use-m3", "fp32")])
def test_precision_auto_is_fp16_only_for_transformers_on_gpu_workers(model, on_gpus):
    """use-m3 in fp16 on an H200 left a row at cosine 0.81 to fp32; MiniLM stayed at 0.99999."""
    embedding = Embedding(resolve_model(model))
    with_gpus = types.SimpleNamespace(routing=Routing(cpu={"CPU": 1}, gpu={"GPU": 1}, torch_threads=None))
    cpu_only = types.SimpleNamespace(routing=Routing(cpu={"CPU": 1}, gpu={"CPU": 1}, torch_threads=None))
    assert (embedding.precision_on(with_gpus), embedding.precision_on(cpu_only)) == (on_gpus, "fp32")
    assert Embedding(resolve_model(model), precision="fp16").precision_on(cpu_only) == "fp16"  # asked for: as given
