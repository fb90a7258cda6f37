"""``cluster.yaml``: where work runs, validated before anything starts.

Every key is documented in :data:`CLUSTER_KEYS`; an unknown key or a wrong type is an
error that names the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from kbatch.errors import ClusterError

CLUSTER_KEYS: dict[str, str] = {
    "address": "an existing scheduler (tcp://host:8786); kbatch then starts no workers",
    "n_workers": "local CPU worker processes; 'auto' picks the measured best layout",
    "threads_per_worker": "Dask threads per local worker (tasks run at once per worker)",
    "torch_threads": "torch intra-op threads per worker; 'auto' = cores / workers",
    "memory_limit": "per local worker, e.g. '4GiB', or 'auto' (machine memory / workers)",
    "dashboard_address": "where the local Dask dashboard listens, e.g. ':8787' or ':0'",
    "gpu_workers": "local dask-cuda workers (one per GPU, resources GPU=1): 'auto' = every visible GPU, 0 = none",
}


@dataclass(frozen=True)
class ClusterConfig:
    """Validated contents of a cluster file (see :data:`CLUSTER_KEYS`)."""

    address: str | None = None
    n_workers: int | str = "auto"
    threads_per_worker: int = 1
    torch_threads: int | str = "auto"
    memory_limit: str = "auto"
    dashboard_address: str = ":8787"
    gpu_workers: int | str = "auto"

    def __post_init__(self) -> None:
        for name in ("n_workers", "torch_threads"):
            _check_count_or_auto(name, getattr(self, name))
        if not (self.gpu_workers == "auto" or (isinstance(self.gpu_workers, int) and not isinstance(self.gpu_workers, bool)
                                                and self.gpu_workers >= 0)):
            raise ClusterError(f"cluster file: 'gpu_workers' must be 'auto' or a number of GPUs (0 for none), got {self.gpu_workers!r}")
        _check_count_or_auto("threads_per_worker", self.threads_per_worker, allow_auto=False)
        if self.address is not None and not isinstance(self.address, str):
            raise ClusterError(f"cluster file: 'address' must be a string like tcp://host:8786, got {self.address!r}")

    def local_workers(self, cores: int | None = None) -> int:
        """Worker processes for a local cluster: one per core.

        Measured on 2 cores (docs/decisions.md): two single-thread workers encode about
        1.8x faster than one worker whose torch uses both cores.
        """
        if self.n_workers != "auto":
            return int(self.n_workers)
        return cores or os.cpu_count() or 1

    def local_gpus(self, visible: int | None = None) -> int:
        """dask-cuda workers to start: every visible GPU for ``auto``, else as many as asked
        (more than there are is an error, so a typo never silently runs on CPU)."""
        visible = len(visible_devices()) if visible is None else visible
        if self.gpu_workers == "auto":
            return visible
        if self.gpu_workers > visible:
            raise ClusterError(f"cluster file asks for {self.gpu_workers} GPU worker(s) but {visible} GPU(s) are visible")
        return int(self.gpu_workers)

    def torch_threads_per_worker(self, n_workers: int, cores: int | None = None) -> int:
        if self.torch_threads != "auto":
            return int(self.torch_threads)
        return max(1, (cores or os.cpu_count() or 1) // max(1, n_workers))


def visible_devices() -> list[str]:
    """Ids of the GPUs this machine offers to new processes (``CUDA_VISIBLE_DEVICES``, else
    ``nvidia-smi -L``), found without importing torch or initializing CUDA in the client."""
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is not None:
        return [d.strip() for d in chosen.split(",") if d.strip() and not d.strip().startswith("-")]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(n) for n in range(sum(1 for line in listed.splitlines() if line.startswith("GPU ")))]


def _check_count_or_auto(name: str, value: Any, allow_auto: bool = True) -> None:
    if allow_auto and value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        expected = "a positive integer or 'auto'" if allow_auto else "a positive integer"
        raise ClusterError(f"cluster file: '{name}' must be {expected}, got {value!r}")


def load_cluster_config(path: str | os.PathLike[str] | None) -> ClusterConfig:
    """Read and validate a cluster file; ``None`` gives the packaged defaults."""
    if path is None:
        return ClusterConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterError(f"cluster file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ClusterError(f"cluster file {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ClusterError(f"cluster file {path} must be a mapping of keys to values")
    known = {f.name for f in fields(ClusterConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ClusterError(
            f"cluster file {path}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})"
        )
    return ClusterConfig(**raw)
