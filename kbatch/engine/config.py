"""``cluster.yaml``: where work runs, validated before anything starts.

Every key, its default and its one-line documentation live in the packaged
``cluster-defaults.yaml`` (read into :data:`CLUSTER_DEFAULTS` and :data:`CLUSTER_KEYS`, like
dask's ``distributed.yaml``); an unknown key, a wrong type or a value
that cannot work (a 5-byte memory limit, a port out of range) is an error that names the
key, raised before anything starts, so a typo never silently falls back to a default or
hangs a run at 0%.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml
from dask.utils import format_bytes, parse_bytes

from kbatch.errors import ClusterError

# What every local process kbatch starts listens on; only the dashboard can be opened wider.
LOOPBACK = "127.0.0.1"
# A worker that encodes holds about 700 MiB (torch and sentence-transformers 480 MiB, use-m3
# 170 MiB, measured): below 1 GiB the nanny pauses it at 80% or restarts it at 95% of its
# limit before its first task ends, and the run waits at 0% for ever.
MIN_MEMORY_LIMIT = 2**30
# More local processes or threads than this per core only add memory (a model copy per
# worker) and contention; a slipped digit (20 workers for 2) must not start them.
MOST_PER_CORE = 4
MOST_THREADS = 1024
ADDRESS_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
DEFAULTS_FILE = "cluster-defaults.yaml"
_KEY_LINE = re.compile(r"([a-z_]+):")


def _read_defaults() -> tuple[dict[str, Any], dict[str, str]]:
    """Each key's default and its doc (the comment line right above it) from the packaged
    defaults file, so a new key is written once: its value, its doc and its name together."""
    text = resources.files("kbatch.engine").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
    docs: dict[str, str] = {}
    above = ""
    for line in text.splitlines():
        key = _KEY_LINE.match(line)
        if key:
            docs[key[1]] = above
        above = line[1:].strip() if line.startswith("#") else ""
    defaults = yaml.safe_load(text)
    return defaults, {name: docs.get(name, "") for name in defaults}


# What a cluster file may set: every key's default, and its one line for error messages and docs.
CLUSTER_DEFAULTS, CLUSTER_KEYS = _read_defaults()


@dataclass(frozen=True)
class ClusterConfig:
    """Validated contents of a cluster file; fields and defaults are those of the packaged
    defaults file (:data:`CLUSTER_DEFAULTS`, documented in :data:`CLUSTER_KEYS`)."""

    address: str | None = CLUSTER_DEFAULTS["address"]
    n_workers: int | str = CLUSTER_DEFAULTS["n_workers"]
    threads_per_worker: int = CLUSTER_DEFAULTS["threads_per_worker"]
    torch_threads: int | str = CLUSTER_DEFAULTS["torch_threads"]
    memory_limit: str | int = CLUSTER_DEFAULTS["memory_limit"]
    dashboard_address: str = CLUSTER_DEFAULTS["dashboard_address"]
    gpu_workers: int | str = CLUSTER_DEFAULTS["gpu_workers"]
    storage_options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(CLUSTER_DEFAULTS["storage_options"]))

    def __post_init__(self) -> None:
        most = MOST_PER_CORE * (os.cpu_count() or 1)
        _check_count("n_workers", self.n_workers, most)
        _check_count("threads_per_worker", self.threads_per_worker, most, allow_auto=False)
        # With an address, torch threads run on the scheduler's workers, whose cores are not these.
        _check_count("torch_threads", self.torch_threads, most if self.address is None else MOST_THREADS)
        if not (self.gpu_workers == "auto" or (_is_int(self.gpu_workers) and self.gpu_workers >= 0)):
            _bad("gpu_workers", "'auto' or a number of GPUs (0 for none)", self.gpu_workers)
        if self.address is not None:
            _check_address(self.address)
        _memory_bytes(self.memory_limit)
        _dashboard(self.dashboard_address)
        check_storage_options(self.storage_options, "storage_options", ClusterError)

    def with_storage_options(self, options: Mapping[str, Mapping[str, Any]]) -> ClusterConfig:
        """This configuration with ``options`` (a job file's) over its own, protocol by protocol."""
        merged = {p: {**self.storage_options.get(p, {}), **options.get(p, {})} for p in {*self.storage_options, *options}}
        return replace(self, storage_options=merged)

    @property
    def memory_bytes(self) -> int | None:
        """``memory_limit`` per worker in bytes, ``None`` for ``auto``."""
        return _memory_bytes(self.memory_limit)

    @property
    def dashboard(self) -> tuple[str, int]:
        """``dashboard_address`` as (host, port)."""
        return _dashboard(self.dashboard_address)

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

    def torch_threads_per_worker(self, local_workers: int | None, cores: int | None = None) -> int | None:
        """Torch intra-op threads each worker uses: ``torch_threads`` when it is a number.

        For ``auto``: this machine's cores shared by the ``local_workers`` kbatch started, so
        they do not fight over them; ``None`` when the workers are not kbatch's (an existing
        scheduler, a client passed in), whose cores are not these, so each keeps its own.
        The one place ``auto`` is resolved.
        """
        if self.torch_threads != "auto":
            return int(self.torch_threads)
        if local_workers is None:
            return None
        return max(1, (cores or os.cpu_count() or 1) // max(1, local_workers))


def check_storage_options(options: object, key: str, error: type[Exception]) -> None:
    """``options`` must map protocol names (``s3``, ``gcs``, ...) to mappings of option names:
    anything else is an error naming ``key``."""
    if not isinstance(options, Mapping):
        raise error(f"{key} must be a mapping of protocols (s3, gcs, ...) to their options, got {options!r}")
    for protocol, settings in options.items():
        if not (isinstance(protocol, str) and protocol.isidentifier()) or not isinstance(settings, Mapping):
            raise error(f"{key}: {protocol!r} must be a protocol name (s3, gcs, ...) with a mapping of options")
        if not all(isinstance(name, str) for name in settings):
            raise error(f"{key}: the options of {protocol!r} must be named")


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


def _check_count(name: str, value: Any, most: int, allow_auto: bool = True) -> None:
    if allow_auto and value == "auto":
        return
    if not _is_int(value) or not 1 <= value <= most:
        expected = f"a whole number from 1 to {most}" + (" or 'auto'" if allow_auto else "")
        _bad(name, expected, value)


def _memory_bytes(value: Any) -> int | None:
    """A size Dask reads (``parse_bytes``), at least :data:`MIN_MEMORY_LIMIT`; ``None`` for ``auto``."""
    if value == "auto":
        return None
    try:
        size = parse_bytes(value) if isinstance(value, str) or _is_int(value) else 0
    except ValueError:
        size = 0
    if size < MIN_MEMORY_LIMIT:
        _bad("memory_limit", f"'auto' or a size of at least {format_bytes(MIN_MEMORY_LIMIT)} per worker, e.g. '4GiB'", value)
    return size


def _dashboard(value: Any) -> tuple[str, int]:
    """(host, port); no host means this machine only, like every other process kbatch
    starts, not Dask's every interface."""
    expected = f"HOST:PORT, e.g. '{LOOPBACK}:8787' (this machine only) or '0.0.0.0:8787' (the network)"
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not (host == "" or _is_host(host)) or not (port.isascii() and port.isdigit() and int(port) <= 65535):
        _bad("dashboard_address", expected, value)
    return host or LOOPBACK, int(port)


def _check_address(address: Any) -> None:
    """A scheduler URL with a port: ``Client`` would read ``host:8786`` or a bare host its own way."""
    expected = f"a scheduler URL with a port, e.g. tcp://host:8786 ({', '.join(ADDRESS_SCHEMES)})"
    if not isinstance(address, str) or not address.isprintable() or " " in address:
        _bad("address", expected, address)
    try:
        url = urlsplit(address)
        complete = url.scheme in ADDRESS_SCHEMES and url.hostname and url.port is not None
    except ValueError:  # a port that is no number, a broken [IPv6] host
        complete = False
    if not complete or url.path or url.query or url.fragment:
        _bad("address", expected, address)


def _is_host(host: str) -> bool:
    """An IPv4 address or a host name (an IPv6 address in HOST:PORT would be ambiguous)."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host)) and not host.replace(".", "").isdigit()
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(key: str, expected: str, value: Any) -> NoReturn:
    raise ClusterError(f"{key!r} must be {expected}, got {value!r}")


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
    known = set(CLUSTER_KEYS)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ClusterError(
            f"cluster file {path}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(known))})"
        )
    try:
        return ClusterConfig(**raw)
    except ClusterError as exc:
        raise ClusterError(f"cluster file {path}: {exc}") from None
