"""Per-worker caches of what is costly to load (models, analyzers, tokenizers, a side's
vectors), owned by one worker plugin that releases them all.

A loader decorated with :func:`worker_cache` keeps its results in its worker process
between tasks, like ``functools.lru_cache``, and is registered here, so that
:func:`release` drops every one of them at once and gives GPU memory back. On a cluster
kbatch did not start, the command frame removes :class:`WorkerCaches` at the end of a
command, and its ``teardown`` releases the caches: a shared worker does not keep a
night's models and right-side tensors for the next user.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from distributed.diagnostics.plugin import WorkerPlugin

F = TypeVar("F", bound=Callable[..., Any])
_CACHES: list[Any] = []


def worker_cache(maxsize: int = 1) -> Callable[[F], F]:
    """``lru_cache(maxsize)`` whose entries :func:`release` drops."""

    def wrap(function: F) -> F:
        cached = lru_cache(maxsize=maxsize)(function)
        _CACHES.append(cached)
        return cached  # type: ignore[return-value]

    return wrap


def held() -> int:
    """How many resources this process holds in kbatch's caches."""
    return sum(cache.cache_info().currsize for cache in _CACHES)


def release() -> int:
    """Drop every cached resource of this process and free GPU memory; how many were held."""
    count = held()
    for cache in _CACHES:
        cache.cache_clear()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    return count


class WorkerCaches(WorkerPlugin):
    """The worker plugin that owns kbatch's caches: its teardown releases them."""

    name = "kbatch-caches"

    def setup(self, worker: Any) -> None:
        """Nothing to load: resources load lazily, on a worker's first task that needs them."""

    def teardown(self, worker: Any) -> None:
        release()
