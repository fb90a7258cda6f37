"""``kbatch keywords``: KeyBERT-style keywords from Korean morphemes, per document.

read → normalize → morphemes → candidate n-grams → subword ids (CPU workers), then on
the encoding worker: document vectors, each distinct candidate of the partition embedded
once, candidates ranked by cosine to their document and diversified by MMR.

>>> keywords("examples/reviews.parquet", "out/kw", top_n=5, diversity=0.5)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers import DEFAULT_ANALYZER, AnalyzerSpec
from kbatch.analyzers.stopwords import BUILTIN, load_stopwords
from kbatch.analyzers.tags import TAGS, parse_pos
from kbatch.commands.embed import embedding_params, encode_strings, make_encode
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import RunOptions, partition_record, run_command
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Prepared, run_partitions
from kbatch.errors import InputError
from kbatch.io.reader import Piece
from kbatch.io.writer import OutputDir, PartitionWriter
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages import Encode, MorphAnalyze, NormalizeText, SubwordTokenize
from kbatch.stages.candidates import KeywordCandidates
from kbatch.stages.encode import vector_matrix
from kbatch.vectors.mmr import mmr


def keywords(
    source,
    output: str | os.PathLike[str],
    *,
    top_n: int = 5,
    diversity: float = 0.0,
    ngram: int = 2,
    pos: str = "nouns",
    analyzer: str = DEFAULT_ANALYZER,
    stopwords: str | os.PathLike[str] | None = None,
    model: str = DEFAULT_MODEL,
    trust_remote_code: bool = False,
    **options,
) -> RunResult:
    """The ``top_n`` keywords of every row's ``text_col``: ``id, keywords, scores`` Parquet.

    Candidates are n-grams of up to ``ngram`` adjacent morphemes whose tags ``pos``
    selects (nouns by default, so noun compounds too), minus ``stopwords`` (built-in list by
    default). ``diversity`` 0..1 trades relevance for variety (MMR, as in KeyBERT).
    ``options`` are those of :class:`~kbatch.engine.frame.RunOptions`.
    """
    if top_n < 1:
        raise InputError(f"--top-n must be at least 1, got {top_n}")
    if not 0 <= diversity <= 1:
        raise InputError(f"--diversity must be between 0 and 1, got {diversity}")
    if ngram < 1:
        raise InputError(f"--ngram must be at least 1, got {ngram}")
    keep = parse_pos(pos)
    stop = load_stopwords(stopwords if stopwords is not None else BUILTIN)
    spec = resolve_model(model, trust_remote_code=trust_remote_code)
    morph = AnalyzerSpec(analyzer)
    morph.check()
    params = {**embedding_params(spec, None, True, "float32", None), "top_n": top_n, "diversity": diversity, "ngram": ngram,
              "pos": sorted(keep), "stopwords": sorted(stop), "analyzer": analyzer}

    def work(cluster: Cluster, pieces: Sequence[Piece], out: OutputDir, key: str) -> list[dict]:
        encode = make_encode(cluster, spec, None, True, "float32", None, None)
        subword = SubwordTokenize.for_model(spec)
        stages = (NormalizeText(), MorphAnalyze(morph, TAGS), KeywordCandidates(keep, stop, ngram), subword)
        metadata = {"params": key, "model": spec.describe()}
        return run_partitions(
            cluster, pieces, prepare_args=(run.text_col, run.id_col, stages),
            finish=rank_and_write, finish_args=(encode, subword, top_n, diversity, PartitionWriter(str(out.path)), metadata),
            progress=run.progress,
        )

    def describe(record: dict) -> dict:
        return {"model": spec.describe(), "analyzer": {"name": analyzer, "pos": pos, "ngram": ngram},
                "output_schema": {"keywords": "list<string>", "scores": "list<float32>"}}

    run = RunOptions(**options)
    return run_command("keywords", source, output, params, run, work, describe)


def rank_and_write(prepared: Prepared, index: int, encode: Encode, subword: SubwordTokenize, top_n: int,
                   diversity: float, writer: PartitionWriter, metadata: dict) -> dict:
    """The finishing task of one partition: embed documents and distinct candidates, pick keywords, write."""
    frame, seconds = prepared.data, prepared.seconds
    start = time.perf_counter()
    frame = encode(frame)
    documents, _ = vector_matrix(pa.array(frame["embedding"]))
    candidates = pa.array(frame["candidates"])
    flat = pc.list_flatten(candidates)
    distinct = pc.unique(flat).to_pylist()
    vectors = encode_strings(distinct, subword, encode) if distinct else np.zeros((0, documents.shape[1]), np.float32)
    seconds["EncodeCandidates"] = time.perf_counter() - start
    start = time.perf_counter()
    where = pc.index_in(flat, value_set=pa.array(distinct, pa.string())).to_numpy()
    offsets = candidates.offsets.to_numpy()
    words, scores = [], []
    for row, valid in enumerate(candidates.is_valid().to_numpy(zero_copy_only=False)):
        if not valid:
            words.append(None)
            scores.append(None)
            continue
        own = where[offsets[row] : offsets[row + 1]]
        chosen, score = mmr(documents[row], vectors[own], top_n, diversity)
        words.append([distinct[i] for i in own[chosen]])
        scores.append(score.astype(np.float32))
    table = pa.table({"id": pa.array(frame["id"]), "keywords": pa.array(words, pa.list_(pa.string())),
                      "scores": pa.array(scores, pa.list_(pa.float32()))})
    seconds["Rank"] = time.perf_counter() - start
    partition = partition_record(index, frame, prepared, candidates=len(distinct),
                                 keywords=pc.sum(pc.list_value_length(table["keywords"])).as_py() or 0)
    record = {**metadata, "partition": partition}
    writer.write(index, table, record)
    return record
