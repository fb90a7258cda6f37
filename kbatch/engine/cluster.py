"""Start or join the Dask cluster a command runs on, and route tasks by resource.

Local mode starts spawned worker processes (JVM and CUDA do not survive a fork) that
advertise ``CPU`` resources, plus one ``dask cuda worker`` per GPU (resources ``GPU=1``,
one thread) on the same scheduler when GPUs are visible; ``address:`` joins an existing
scheduler and starts nothing. Encoding goes to ``GPU`` workers when there are any,
everything else to ``CPU`` workers.

Everything a local cluster starts (scheduler, nannies, workers, dashboard) listens on
loopback; only the dashboard can be opened to the network, by ``dashboard_address``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import dask
from distributed import WorkerPlugin

from kbatch.caches import WorkerCaches
from kbatch.engine.config import LOOPBACK, ClusterConfig, visible_devices
from kbatch.engine.main_guard import check_main_guard
from kbatch.errors import ClusterError
from kbatch.io import storage


@dataclass(frozen=True)
class Routing:
    """Which worker resources each stage's declared resource asks for on this cluster.

    Resources are only requested when some worker advertises them, so a cluster of plain
    ``dask worker`` processes still runs everything instead of waiting forever; ``GPU``
    stages go to CPU workers when no worker has a GPU.
    """

    cpu: dict[str, float] | None
    gpu: dict[str, float] | None
    torch_threads: int | None

    @classmethod
    def from_workers(cls, workers: dict[str, dict], torch_threads: int | None) -> Routing:
        resources = [w.get("resources") or {} for w in workers.values()]
        cpu = {"CPU": 1} if any("CPU" in r for r in resources) else None
        gpu = {"GPU": 1} if any("GPU" in r for r in resources) else cpu
        return cls(cpu=cpu, gpu=gpu, torch_threads=torch_threads)

    @property
    def has_gpus(self) -> bool:
        return self.gpu == {"GPU": 1}

    def of(self, resource: str) -> dict[str, float] | None:
        """The resources a task of stages declaring ``resource`` (``CPU`` or ``GPU``) asks for."""
        return self.gpu if resource == "GPU" else self.cpu


@dataclass(frozen=True)
class Cluster:
    """A connected client with what the pipeline needs to know about its workers."""

    client: object
    routing: Routing
    dashboard_link: str | None
    start_seconds: float

    def workers_for(self, resources: dict[str, float] | None) -> int:
        """How many workers can run a task that asks for ``resources``."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return sum(1 for w in workers if not resources or all(k in (w.get("resources") or {}) for k in resources))


@contextmanager
def open_cluster(config: ClusterConfig, log=sys.stderr) -> Iterator[Cluster]:
    """Connect to ``config.address`` or start a local cluster; close what we started.

    Before starting a local cluster, a script calling kbatch from its top level without
    ``if __name__ == "__main__":`` is stopped with one line (:mod:`kbatch.engine.main_guard`).
    """
    from distributed import Client, LocalCluster

    if not config.address:
        check_main_guard()
    start = time.perf_counter()
    local = gpu_workers = None
    try:
        if config.address:
            client = Client(config.address, timeout="10s")
            torch_threads = config.torch_threads_per_worker(local_workers=None)  # its workers, their cores
        else:
            n_workers = config.local_workers()
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                local = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=config.threads_per_worker,
                    processes=True,
                    host=LOOPBACK,
                    memory_limit=_memory_limit(config, n_workers),
                    dashboard_address=_dashboard_address(config),
                    resources={"CPU": config.threads_per_worker},
                    silence_logs=logging.ERROR,
                )
            client = Client(local)
            torch_threads = config.torch_threads_per_worker(local_workers=n_workers)
    except OSError as exc:
        where = config.address or "a local cluster"
        raise ClusterError(f"cannot start or reach {where}: {exc}") from None
    try:
        if local is not None:
            gpu_workers = _start_gpu_workers(config, local.scheduler_address, log)
            if gpu_workers is not None:
                gpu_workers.wait_joined(client, n_workers + gpu_workers.gpus)
        workers = client.scheduler_info(n_workers=-1)["workers"]
        if not workers:
            raise ClusterError(f"the scheduler at {config.address} has no workers; start some with 'dask worker {config.address}'")
        client.register_plugin(WorkerCaches())
        if config.storage_options:
            storage.configure(config.storage_options)
            client.register_plugin(StorageOptions(config.storage_options))
        link = client.dashboard_link if _has_dashboard(client) else None
        print(f"kbatch: dashboard {link}" if link else "kbatch: no dashboard (install bokeh to get one)", file=log)
        yield Cluster(
            client=client,
            routing=Routing.from_workers(workers, torch_threads),
            dashboard_link=link,
            start_seconds=time.perf_counter() - start,
        )
    finally:
        if local is None:
            _release_caches(client, bool(config.storage_options))
        client.close()
        if gpu_workers is not None:
            gpu_workers.stop()
        if local is not None:
            local.close()


class StorageOptions(WorkerPlugin):
    """``storage_options`` of the cluster file on every worker, those that join later too:
    workers open inputs and outputs themselves. Removed with the run's end on a cluster
    kbatch did not start, which restores each worker's own settings."""

    name = "kbatch-storage-options"

    def __init__(self, options: Mapping[str, Mapping[str, Any]]) -> None:
        self.options = {protocol: dict(settings) for protocol, settings in options.items()}

    def setup(self, worker: Any) -> None:
        import fsspec.config

        self.before = {protocol: fsspec.config.conf.get(protocol) for protocol in self.options}
        storage.configure(self.options)

    def teardown(self, worker: Any) -> None:
        import fsspec.config

        for protocol, settings in self.before.items():
            if settings is None:
                fsspec.config.conf.pop(protocol, None)
            else:
                fsspec.config.conf[protocol] = settings


def _release_caches(client, storage_options: bool) -> None:
    """On workers kbatch did not start, drop its models, analyzers and vectors, and give their
    GPU memory back: removing the plugin that owns them runs its teardown on every worker.
    Likewise take back the cluster file's storage options, when it set any."""
    with contextlib.suppress(Exception):  # a worker that went away has nothing left to free
        client.unregister_worker_plugin(WorkerCaches.name)
    if storage_options:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(StorageOptions.name)


# Seconds for dask-cuda workers to start and join (CUDA context creation included).
GPU_START_SECONDS = 180


@dataclass
class GPUWorkers:
    """The ``dask cuda worker`` process kbatch started (it runs one worker per GPU); its
    output goes to ``errors``, read when it exits before its workers join."""

    process: subprocess.Popen
    gpus: int
    errors: IO[bytes]

    def wait_joined(self, client, workers: int, timeout: float = GPU_START_SECONDS) -> None:
        """Wait until the cluster has ``workers`` workers; a worker process that dies while
        starting (a broken CUDA install, a wrong flag) fails at once with its last line."""
        deadline = time.monotonic() + timeout
        while len(client.scheduler_info(n_workers=-1)["workers"]) < workers:
            if self.process.poll() is not None:
                raise ClusterError(f"the dask-cuda worker exited with code {self.process.returncode} before "
                                   f"joining: {self._last_line()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"the dask-cuda worker did not join within {timeout:.0f} s: {self._last_line()}")
            time.sleep(0.2)

    def _last_line(self) -> str:
        self.errors.seek(0)
        lines = [line.strip() for line in self.errors.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else "it printed nothing"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.errors.close()


def _start_gpu_workers(config: ClusterConfig, address: str, log) -> GPUWorkers | None:
    """One dask-cuda worker per GPU (``GPU=1``, one thread) joined to ``address``, or ``None``
    when there is no GPU to use. Visible GPUs without dask-cuda: CPU encoding for ``auto``
    (with a warning), an error when GPUs were asked for by number."""
    gpus = config.local_gpus()
    if not gpus:
        return None
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        if config.gpu_workers != "auto":
            raise ClusterError("gpu_workers needs dask-cuda: pip install 'kbatch[gpu]'") from None
        print(f"kbatch: warning: {gpus} GPU(s) visible but dask-cuda is not installed; encoding on CPU workers "
              "(pip install 'kbatch[gpu]')", file=log)
        return None
    # Dask's pre-spawn environment holds numbers (OMP_NUM_THREADS: 1); a process's must be strings.
    spawn = {name: str(value) for name, value in _worker_environ().items()}
    environ = {**os.environ, **spawn, "CUDA_VISIBLE_DEVICES": ",".join(visible_devices()[:gpus])}
    command = [sys.executable, "-m", "dask", "cuda", "worker", address, "--resources", "GPU=1", "--nthreads", "1",
               "--name", "gpu", "--death-timeout", "60", "--host", LOOPBACK, "--no-dashboard",
               "--preload", "kbatch.engine.logs"]  # its output goes to the run's log, Ctrl-C to the client
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (GPUWorkers.stop closes it)
    process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=errors)
    return GPUWorkers(process, gpus, errors)


def _worker_environ() -> dict:
    """Dask's worker environment without ``MALLOC_TRIM_THRESHOLD_``, and quiet loaders.

    Setting it turns off glibc's adaptive mmap threshold, so every large tensor is
    mmap'ed and unmapped again: measured 30% slower torch encoding on CPU (half the
    CPU time spent in the kernel). See docs/decisions.md.
    """
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # Model loading progress bars from every worker would bury kbatch's own bar.
    environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return environ


def _memory_limit(config: ClusterConfig, n_workers: int) -> int:
    if config.memory_bytes is not None:
        return config.memory_bytes
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * 0.9 / n_workers)


def _dashboard_address(config: ClusterConfig) -> str:
    """The configured dashboard address, or the same host on a free port when that port is
    taken: Dask would pick one too, but after a four-line warning."""
    host, port = config.dashboard
    return f"{host}:{port if port == 0 or _port_free(host, port) else 0}"


def _port_free(host: str, port: int) -> bool:
    """Whether the dashboard can listen on ``host:port``, asked as Tornado will bind it
    (``SO_REUSEADDR``, so a port left in TIME_WAIT by the last run counts as free)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _has_dashboard(client) -> bool:
    services = client.scheduler_info().get("services", {})
    return "dashboard" in services
