"""Korean morphological analyzers behind one interface, one instance per worker process.

>>> from kbatch.analyzers import AnalyzerSpec, load_analyzer
>>> analysis = load_analyzer(AnalyzerSpec("mecab")).analyze(["아버지가방에들어가신다"])
>>> analysis.morphemes.forms.to_pylist()[:4]
['아버지', '가', '방', '에']
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import NamedTuple

from kbatch.analyzers.base import Analysis, Analyzer, Morphemes
from kbatch.analyzers.jvm import DEFAULT_JVM_HEAP_MB, JAVA_HINT, java_available
from kbatch.analyzers.userdict import UserWord
from kbatch.caches import worker_cache
from kbatch.errors import AnalyzerError


class _Entry(NamedTuple):
    module: str
    cls: str
    package: str  # import name that must be present
    install: str  # what to pip install
    java: bool
    user_dict: bool
    partition_rows: int  # default partition size: a second or more of work, so per-file costs (fsync) stay small


ANALYZERS: dict[str, _Entry] = {
    "mecab": _Entry("kbatch.analyzers.mecab", "MeCab", "mecab_ko", "mecab-ko", False, True, 5000),
    "kiwi": _Entry("kbatch.analyzers.kiwi", "Kiwi", "kiwipiepy", "kiwipiepy (or: pip install 'kbatch[kiwi]')", False, True, 2000),
    "okt": _Entry("kbatch.analyzers.jvm", "Okt", "konlpy", "konlpy", True, True, 1000),
    "komoran": _Entry("kbatch.analyzers.jvm", "Komoran", "konlpy", "konlpy", True, True, 1000),
    "hannanum": _Entry("kbatch.analyzers.jvm", "Hannanum", "konlpy", "konlpy", True, False, 500),
    "kkma": _Entry("kbatch.analyzers.jvm", "Kkma", "konlpy", "konlpy", True, False, 100),
}
DEFAULT_ANALYZER = "mecab"


@dataclass(frozen=True)
class AnalyzerSpec:
    """Which analyzer and how: small, hashable, pickled to workers instead of the analyzer."""

    name: str = DEFAULT_ANALYZER
    user_words: tuple[UserWord, ...] = ()
    jvm_heap_mb: int = DEFAULT_JVM_HEAP_MB
    threads: int | None = None  # default: the Dask worker's threads, else 1

    def check(self) -> None:
        """Fail fast, in the client, with one line saying what to install or change."""
        entry = ANALYZERS.get(self.name)
        if entry is None:
            raise AnalyzerError(f"unknown analyzer {self.name!r}; choose one of {', '.join(ANALYZERS)}")
        if importlib.util.find_spec(entry.package) is None:
            raise AnalyzerError(f"analyzer {self.name!r} is not installed: pip install {entry.install}")
        if entry.java and not java_available():
            raise AnalyzerError(f"analyzer {self.name!r} runs on Java: {JAVA_HINT}")
        if self.user_words and not entry.user_dict:
            supported = ", ".join(n for n, e in ANALYZERS.items() if e.user_dict)
            raise AnalyzerError(f"analyzer {self.name!r} cannot take a user dictionary; use one of {supported}")
        if self.jvm_heap_mb < 64:
            raise AnalyzerError(f"`jvm_heap` must be at least 64 (MiB), got {self.jvm_heap_mb}")


@worker_cache(4)
def load_analyzer(spec: AnalyzerSpec) -> Analyzer:
    """The analyzer for ``spec``, created once per process (never pickled, never in the client)."""
    spec.check()
    entry = ANALYZERS[spec.name]
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    kwargs: dict = {"user_words": spec.user_words}
    if spec.name != "mecab":
        kwargs["threads"] = spec.threads or _worker_threads()
    if entry.java:
        kwargs["jvm_heap_mb"] = spec.jvm_heap_mb
    try:
        return cls(**kwargs)
    except ImportError as exc:
        raise AnalyzerError(f"analyzer {spec.name!r} failed to import ({exc}): pip install {entry.install}") from None


def _worker_threads() -> int:
    from distributed import get_worker

    try:
        return get_worker().state.nthreads
    except ValueError:
        return min(2, os.cpu_count() or 1)


__all__ = ["ANALYZERS", "DEFAULT_ANALYZER", "Analysis", "Analyzer", "AnalyzerSpec", "Morphemes", "UserWord", "load_analyzer"]
