"""KoNLPy's Java analyzers: Okt, Komoran, Hannanum and Kkma.

The JVM starts inside the (spawned) worker process on first use, with the heap the
user asked for and as many processor threads as the worker has, so garbage collection
and the JIT do not oversubscribe the cores. A JVM does not survive ``fork()``: Dask's
workers are spawned, and kbatch never starts one in the client before forking.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kbatch.analyzers.base import PairAnalyzer
from kbatch.analyzers.userdict import UserWord
from kbatch.errors import AnalyzerError

logger = logging.getLogger(__name__)

DEFAULT_JVM_HEAP_MB = 1024
_started_heap_mb: list[int] = []  # a JVM starts once per process; its heap cannot change
JAVA_HINT = "install a JDK (e.g. apt install openjdk-17-jre-headless) or set JAVA_HOME"


def java_available() -> bool:
    """Whether JPype can find a JVM to load (JAVA_HOME, ``java`` on PATH, or the usual places)."""
    home = os.environ.get("JAVA_HOME")
    if shutil.which("java") or (home and os.path.exists(os.path.join(home, "bin", "java"))):
        return True
    import jpype

    try:
        return bool(jpype.getDefaultJVMPath())
    except jpype.JVMNotFoundException:
        return False


def start_jvm(heap_mb: int, threads: int) -> None:
    """Start the JVM once per process with KoNLPy's class path, our heap and thread count."""
    import jpype
    import jpype.config

    if jpype.isJVMStarted():
        if _started_heap_mb and heap_mb != _started_heap_mb[0]:
            running = _started_heap_mb[0]
            logger.warning("this worker's JVM already runs with -Xmx%dm; `jvm_heap_mb` %d applies to new workers", running, heap_mb)
        return
    if not java_available():
        raise AnalyzerError(f"KoNLPy analyzers need Java 8 or later: {JAVA_HINT}")
    from konlpy import utils

    java = os.path.join(utils.installpath, "java")
    classpath = [java, os.path.join(java, "bin"), os.path.join(java, "*")]
    # Dask threads may have used JPype; waiting for them at exit hangs the interpreter.
    jpype.config.destroy_jvm = False
    jpype.startJVM(
        jpype.getDefaultJVMPath(),
        "-Dfile.encoding=UTF8",
        f"-Xmx{heap_mb}m",
        f"-XX:ActiveProcessorCount={max(1, threads)}",
        classpath=classpath,
        convertStrings=True,
    )
    _started_heap_mb.append(heap_mb)


class KonlpyAnalyzer(PairAnalyzer):
    """Common start-up of the four; subclasses create ``self._tagger``."""

    def __init__(self, user_words: Sequence[UserWord] = (), threads: int = 1, jvm_heap_mb: int = DEFAULT_JVM_HEAP_MB) -> None:
        start_jvm(jvm_heap_mb, threads)
        self._tagger = self._create(user_words)

    def _create(self, user_words: Sequence[UserWord]):
        raise NotImplementedError

    def pos(self, text: str) -> list[tuple[str, str]]:
        return self._tagger.pos(text)


class Okt(KonlpyAnalyzer):
    name = "okt"

    def _create(self, user_words: Sequence[UserWord]):
        import jpype
        from konlpy.tag import Okt as KonlpyOkt

        tagger = KonlpyOkt()
        if user_words:
            # open-korean-text takes extra nouns through its processor (KoNLPy has no API for it).
            processor = jpype.JClass("org.openkoreantext.processor.OpenKoreanTextProcessorJava")
            processor.addNounsToDictionary(jpype.java.util.Arrays.asList([w.form for w in user_words]))
        return tagger

    def pos(self, text: str) -> list[tuple[str, str]]:
        # stem=True gives dictionary forms (먹다); other analyzers give stems (먹).
        pairs = self._tagger.pos(text, norm=True, stem=True)
        return [(form[:-1] if tag in ("Verb", "Adjective") and len(form) > 1 and form.endswith("다") else form, tag) for form, tag in pairs]


class Komoran(KonlpyAnalyzer):
    name = "komoran"
    bmp_only = True

    def _create(self, user_words: Sequence[UserWord]):
        from konlpy.tag import Komoran as KonlpyKomoran

        if not user_words:
            return KonlpyKomoran()
        handle, path = tempfile.mkstemp(prefix="kbatch-komoran-", suffix=".txt")
        atexit.register(Path(path).unlink, missing_ok=True)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(f"{w.form}\t{w.tag}\n" for w in user_words)
        return KonlpyKomoran(userdic=path)


class Hannanum(KonlpyAnalyzer):
    name = "hannanum"

    def _create(self, user_words: Sequence[UserWord]):
        from konlpy.tag import Hannanum as KonlpyHannanum

        return KonlpyHannanum()

    def pos(self, text: str) -> list[tuple[str, str]]:
        return self._tagger.pos(text, ntags=22)


class Kkma(KonlpyAnalyzer):
    name = "kkma"
    bmp_only = True

    def _create(self, user_words: Sequence[UserWord]):
        from konlpy.tag import Kkma as KonlpyKkma

        return KonlpyKkma()
