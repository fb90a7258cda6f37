"""``kbatch tokenize``: read → normalize → morphological analysis (CPU) → write.

>>> result = tokenize("examples/reviews.parquet", "out/tokens", pos="nouns")   # doctest: +SKIP
>>> pd.read_parquet("out/tokens").tokens[0]                                   # doctest: +SKIP
array(['굳', 'ㅋ'], dtype=object)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib import metadata

import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER, AnalyzerSpec
from kbatch.analyzers.jvm import DEFAULT_JVM_HEAP_MB
from kbatch.analyzers.stopwords import BUILTIN, load_stopwords
from kbatch.analyzers.tags import parse_pos
from kbatch.analyzers.userdict import read_user_dict
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import RunOptions, partition_record, run_command
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Prepared, run_partitions
from kbatch.io.reader import Piece
from kbatch.io.writer import OutputDir, PartitionWriter
from kbatch.stages import MorphAnalyze, NormalizeText

# Per-row analyzer errors kept as examples in each partition's record.
ERROR_EXAMPLES = 5


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
                              "stopwords": len(stop), "user_words": len(spec.user_words)},
                 "output_schema": {"tokens": "list<string>", "tags": "list<string>"}}

    def work(cluster: Cluster, pieces: Sequence[Piece], out: OutputDir, key: str) -> list[dict]:
        stages = (NormalizeText(), MorphAnalyze(spec, keep_tags, stop))
        return run_partitions(
            cluster, pieces, prepare_args=(run.text_col, run.id_col, stages),
            finish=write_tokens, finish_args=(PartitionWriter(str(out.path)), {"params": key, **described}),
            progress=run.progress, finish_on_cpu=True,
        )

    run = RunOptions(**options)
    if run.partition_rows is None:
        run = replace(run, partition_rows=ANALYZERS[spec.name].partition_rows)
    return run_command("tokenize", source, output, params, run, work, lambda record: described)


def write_tokens(prepared: Prepared, index: int, writer: PartitionWriter, metadata: dict) -> dict:
    """The finishing task of one partition: write ``id, tokens, tags`` atomically."""
    frame, seconds = prepared.data, prepared.seconds
    start = time.perf_counter()
    table = pa.table({"id": pa.array(frame["id"]), "tokens": pa.array(frame["tokens"]), "tags": pa.array(frame["tags"])})
    partition = partition_record(index, frame, prepared, morphemes=pc.sum(pc.list_value_length(table["tokens"])).as_py() or 0)
    failed = frame[frame["analyzer_error"].notna()].head(ERROR_EXAMPLES)
    partition["errors"] = [{"id": str(i), "error": e} for i, e in zip(failed["id"], failed["analyzer_error"], strict=True)]
    record = {**metadata, "partition": partition}
    writer.write(index, table, record)
    seconds["write"] = time.perf_counter() - start
    return record


def _analyzer_version(name: str) -> str:
    package = ANALYZERS[name].install.split()[0]
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
