"""``kbatch keywords``: KeyBERT-style keywords from Korean morphemes, per document.

read → normalize → morphemes → candidate n-grams → subword ids (CPU workers), then on
the encoding worker: document vectors, each distinct candidate of the partition embedded
once, candidates ranked by cosine to their document and diversified by MMR.

>>> import pandas as pd
>>> result = keywords("examples/catalog.parquet", "out/kw", text_col="title", top_n=3, progress=False)
>>> pd.read_parquet("out/kw").keywords[0].tolist()       # 삼성전자 갤럭시 A15 128GB 블랙 SM-A155N
['삼성전자 갤럭시', '삼성전자', '블랙']
"""

from __future__ import annotations

import os

from kbatch.analyzers import DEFAULT_ANALYZER, AnalyzerSpec
from kbatch.analyzers.stopwords import BUILTIN, load_stopwords
from kbatch.analyzers.tags import TAGS, parse_pos
from kbatch.commands.embedding import Embedding
from kbatch.engine.cluster import Cluster
from kbatch.engine.frame import Partitioned, RunOptions, run_partitioned
from kbatch.engine.manifest import RunResult
from kbatch.engine.run import Pipeline
from kbatch.errors import InputError
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.stages import MorphAnalyze, NormalizeText
from kbatch.stages.candidates import KeywordCandidates
from kbatch.stages.keywords import RankKeywords
from kbatch.stages.read import ReadText


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
    prompt: str | None = None,
    **options,
) -> RunResult:
    """The ``top_n`` keywords of every row's ``text_col``: ``id, keywords, scores`` Parquet.

    Candidates are n-grams of up to ``ngram`` adjacent morphemes whose tags ``pos``
    selects (nouns by default, so noun compounds too), minus ``stopwords`` (built-in list by
    default). ``diversity`` 0..1 trades relevance for variety (MMR, as in KeyBERT). Texts and
    candidates both get ``prompt`` (None: the model's default, ``"none"``: no prompt).
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
    settings = Embedding(resolve_model(model, trust_remote_code=trust_remote_code), prompt=prompt)
    morph = AnalyzerSpec(analyzer)
    morph.check()
    params = {**settings.params(), "top_n": top_n, "diversity": diversity, "ngram": ngram,
              "pos": sorted(keep), "stopwords": sorted(stop), "analyzer": analyzer}
    run = RunOptions(**options)

    def pipeline(cluster: Cluster) -> tuple[Pipeline, dict]:
        embedding = settings.stage(cluster, normalize_text=False)
        stages = (NormalizeText(), MorphAnalyze(morph, TAGS), KeywordCandidates(keep, stop, ngram), embedding,
                  RankKeywords(embedding, top_n, diversity))
        return Pipeline(ReadText(run.text_col, run.id_col), stages, ("id", "keywords", "scores")), {"model": settings.describe_model()}

    def describe(record: dict) -> dict:
        return {"model": settings.describe_model(), "analyzer": {"name": analyzer, "pos": pos, "ngram": ngram}}

    return run_partitioned(Partitioned("keywords", params, pipeline, describe), source, output, run)
