"""``kbatch tokenize``: read → normalize → morphological analysis (CPU) → write.

>>> import pandas as pd
>>> result = tokenize("examples/catalog.parquet", "out/tokens", text_col="title", pos="nouns", progress=False)
>>> pd.read_parquet("out/tokens").tokens[0].tolist()     # 삼성전자 갤럭시 A15 128GB 블랙 SM-A155N
['삼성전자', '갤럭시', '블랙']
"""

from __future__ import annotations

import os
from dataclasses import replace
from importlib import metadata

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER, AnalyzerSpec
from kbatch.analyzers.jvm import DEFAULT_JVM_HEAP_MB
from kbatch.analyzers.stopwords import BUILTIN, load_stopwords
from kbatch.analyzers.tags import parse_pos
from kbatch.analyzers.userdict import read_user_dict
from kbatch.engine.frame import Partitioned, RunOptions, run_partitioned
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Pipeline
from kbatch.stages import MorphAnalyze, NormalizeText
from kbatch.stages.read import ReadText


def tokenize(
    source,
    output: str | os.PathLike[str],
    *,
    analyzer: str = DEFAULT_ANALYZER,
    pos: str = "all",
    user_dict: str | os.PathLike[str] | None = None,
    stopwords: str | os.PathLike[str] | None = None,
    jvm_heap_mb: int = DEFAULT_JVM_HEAP_MB,
    **options,
) -> RunResult:
    """Split the ``text_col`` of every row into morphemes: ``id, tokens, tags`` Parquet.

    ``pos`` is ``all``, ``nouns``, ``content`` or a comma list of unified tags.
    ``stopwords`` is ``builtin``, ``none`` or a file; by default the built-in list
    applies unless ``pos`` is ``all``. ``options`` are those of
    :class:`~kbatch.engine.frame.RunOptions`.
    """
    keep_tags = parse_pos(pos)
    stop = load_stopwords(stopwords if stopwords is not None else (BUILTIN if pos != "all" else None))
    spec = AnalyzerSpec(analyzer, read_user_dict(user_dict) if user_dict else (), jvm_heap_mb)
    spec.check()
    params = {
        "analyzer": spec.name,
        "analyzer_version": _analyzer_version(spec.name),
        "pos": sorted(keep_tags),
        "stopwords": sorted(stop),
        "user_words": [list(w) for w in spec.user_words],
    }
    described = {"analyzer": {"name": spec.name, "version": params["analyzer_version"], "pos": pos,
                              "stopwords": len(stop), "user_words": len(spec.user_words)}}
    run = RunOptions(**options)
    if run.partition_rows is None:
        run = replace(run, partition_rows=ANALYZERS[spec.name].partition_rows)
    stages = (NormalizeText(), MorphAnalyze(spec, keep_tags, stop))
    pipeline = Pipeline(ReadText(run.text_col, run.id_col), stages, ("id", "tokens", "tags"))
    command = Partitioned("tokenize", params, lambda cluster: (pipeline, described), lambda record: described)
    return run_partitioned(command, source, output, run)


def _analyzer_version(name: str) -> str:
    package = ANALYZERS[name].install.split()[0]
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
