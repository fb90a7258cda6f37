"""``kbatch topics``: embed → morphemes → fit on a sample → assign every block → c-TF-IDF → quality.

Embeddings and morphemes are ordinary ``embed`` and ``tokenize`` outputs under the output
directory, so a rerun resumes them; the topic steps after them are cheap and rerun whole.
Blocks are row ranges of the vectors; each is assigned on a worker, which writes its
``doc_topics`` file and returns a summary of counts. Summaries are added up in a tree on
the workers: no process ever holds all documents, their morphemes or their vectors.

>>> result = topics("examples/catalog.parquet", "out/topics", text_col="title", method="kmeans", n_topics=5, fit_sample=200,
...                 progress=False)
>>> result.manifest["counts"]
{'topics': 5, 'outliers': 0}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from kbatch.analyzers import DEFAULT_ANALYZER
from kbatch.commands.embedding import Embedding, check_prompts
from kbatch.commands.match import embedded_side
from kbatch.commands.tokenize import tokenize
from kbatch.engine.frame import RunOptions, open_command, use_cluster_storage
from kbatch.engine.manifest import RunResult
from kbatch.engine.resume import check_output_apart
from kbatch.errors import InputError, ModelError
from kbatch.io import storage
from kbatch.io.identity import params_key
from kbatch.io.reader import plan_input
from kbatch.io.writer import MANIFEST, OutputDir
from kbatch.models.resolve import DEFAULT_MODEL, ModelSpec, resolve_model
from kbatch.topicmodel import tasks
from kbatch.topicmodel.continuity import PreviousTopics
from kbatch.topicmodel.output import topics_manifest, write_topics
from kbatch.topicmodel.steps import Describing, FoundTopics, TopicSteps, block_rows

METHODS = ("hdbscan", "kmeans", "minibatch", "ctm")
# hdbscan: outliers close to a topic join it (the default), or all stay outliers.
OUTLIERS = ("nearest", "keep")
# Dimensions HDBSCAN clusters in (density is meaningless in hundreds of dimensions).
HDBSCAN_DIMS = 10
PLOT_POINTS = 3_000
CTM_EPOCHS = 50


def topics(
    source,
    output: str | os.PathLike[str] = "out/topics",
    *,
    n_topics: int | str = "auto",
    method: str = "hdbscan",
    fit_sample: int = 20_000,
    reduce_dims: int | None = None,
    min_cluster_size: int | None = None,
    outliers: str = "nearest",
    top_words: int = 10,
    keyword_diversity: float = 0.0,
    representatives: int = 3,
    embeddings: str | os.PathLike[str] | None = None,
    model: str | None = None,
    trust_remote_code: bool = False,
    prompt: str | None = None,
    analyzer: str = DEFAULT_ANALYZER,
    pos: str = "nouns",
    stopwords: str | os.PathLike[str] | None = None,
    label_col: str | None = None,
    plot: str | os.PathLike[str] | None = None,
    seed: int = 0,
    cache: str | os.PathLike[str] | None = None,
    previous: str | os.PathLike[str] | None = None,
    **options,
) -> RunResult:
    """Find topics in the ``text_col`` of ``source``: writes ``doc_topics/`` (``id, topic, score``),
    ``topics.parquet`` (``topic, size, keywords, keyword_scores, representative_ids``) and
    ``_kbatch.json`` with NPMI coherence, topic diversity and, given ``label_col``, NMI/ARI.

    ``method``: ``hdbscan`` (BERTopic's clustering, fitted on ``fit_sample`` documents in
    ``reduce_dims`` = 10 PCA dimensions: finds the number of topics and the outliers itself;
    a given ``n_topics`` merges its closest clusters, or k-means makes them when it finds fewer;
    ``outliers="nearest"`` lets an outlier join its nearest topic when it is about as close
    as HDBSCAN's own members are, ``"keep"`` leaves every outlier -1), ``kmeans`` (fitted on the sample;
    ``n_topics="auto"`` picks k by silhouette), ``minibatch`` (k-means then updated by every
    block) or ``ctm`` (CombinedTM on bags of morphemes + vectors). ``embeddings`` reuses
    vectors: an ``embed`` output or Parquet with ``id`` and ``embedding`` in source row order.
    ``prompt`` names the model's prompt (None: its default, ``"none"``: no prompt). ``cache`` is
    an embedding cache directory (:mod:`kbatch.vectors.cache`). ``previous`` is an earlier
    ``topics`` output: a topic that is one of its topics keeps that topic's id
    (:mod:`kbatch.topicmodel.continuity`). ``options`` are those of
    :class:`~kbatch.engine.frame.RunOptions` (``partition_rows`` applies to the embed and tokenize steps).

    (Longer than 60 lines for its twenty topic options and their documentation; the body is
    the checks and one call per step.)
    """
    k = _check(n_topics, method, outliers, fit_sample, top_words, keyword_diversity, plot)
    run = RunOptions(**options)
    if model is not None:  # refused or missing: before anything is read
        check_prompts(resolve_model(model, trust_remote_code=trust_remote_code), prompt)
    use_cluster_storage(run)
    earlier = PreviousTopics.read(previous) if previous is not None else None
    started, out = time.perf_counter(), storage.location(output)
    for read in (source, embeddings) if embeddings is not None else (source,):
        check_output_apart(out, read)
    if model is None and embeddings is None:
        check_prompts(resolve_model(DEFAULT_MODEL), prompt)  # missing: before any cluster starts
    params = {"command": "topics", "n_topics": n_topics, "method": method, "fit_sample": fit_sample, "reduce_dims": reduce_dims,
              "min_cluster_size": min_cluster_size, "outliers": outliers, "top_words": top_words, "keyword_diversity": keyword_diversity,
              "representatives": representatives, "analyzer": analyzer, "pos": pos, "stopwords": str(stopwords),
              "label_col": label_col, "seed": seed, "text_col": run.text_col, "id_col": run.id_col}
    settings = tasks.FitSettings(method, k, reduce_dims or (HDBSCAN_DIMS if method == "hdbscan" else None), min_cluster_size, seed,
                                 CTM_EPOCHS, outliers)
    seconds: dict[str, float] = {}
    with open_command("topics", out, run) as (cluster, _):
        nested = replace(run, client=cluster.client, report=None)
        embedding = {"model": model, "trust_remote_code": trust_remote_code, "cache": cache, "prompt": prompt}
        docs = _documents(source, embeddings, out, embedding, nested, {"analyzer": analyzer, "pos": pos, "stopwords": stopwords}, seconds)
        params.update(input=docs.morphemes.manifest["params"]["input"], vectors=docs.vectors_key)
        key = params_key(params)
        OutputDir(out).prepare(key, 0, run.overwrite)
        if label_col:
            plan_input(source, label_col, text_param="label_col", text_is_string=False)
        source_key = tuple(map(str, source)) if isinstance(source, (list, tuple)) else str(source)
        inputs = tasks.Inputs(storage.join(out, "_tokens"), source_key, run.text_col, label_col)
        blocks = plan_input(docs.vectors_dir, "embedding", "id", block_rows(docs.rows, cluster), text_is_string=False).pieces
        encoding = docs.embedding.stage(cluster) if keyword_diversity > 0 else None
        found = TopicSteps(cluster, run.progress, seconds).find(
            blocks, inputs, settings, fit_sample, earlier, storage.join(out, "doc_topics"), key,
            Describing(representatives, top_words, keyword_diversity, encoding, PLOT_POINTS if plot else 0))
    title = f"{len(found.table[found.table.topic >= 0])} topics of {docs.rows:,} documents ({method})"
    return _finish(found, out, plot, title, earlier, previous, params, key, docs, len(blocks), seconds, started)


@dataclass(frozen=True)
class _Documents:
    """The corpus as topics reads it: vectors (directory, rows, how they were made, fingerprint) and morphemes."""

    vectors_dir: str
    rows: int
    embedding: Embedding
    vectors_key: str
    morphemes: RunResult


def _documents(source, embeddings, out: str, embedding: dict, run: RunOptions, analysis: dict, seconds: dict) -> _Documents:
    """The documents' vectors (embedded, or ``embeddings`` as given) and morphemes, each an
    ordinary output under ``out`` that a rerun resumes."""
    step = time.perf_counter()
    vectors_dir, rows, made, vectors_key = document_vectors(source, embeddings, storage.join(out, "_embeddings"), embedding, run)
    seconds["embed"] = time.perf_counter() - step
    step = time.perf_counter()
    morphemes = tokenize(source, storage.join(out, "_tokens"), **analysis, **run.as_kwargs())
    print(f"kbatch {morphemes.summary()}", file=run.log)
    seconds["tokenize"] = time.perf_counter() - step
    if morphemes.manifest["rows_in"] != rows:
        raise InputError(f"--embeddings has {rows:,} rows but the source has {morphemes.manifest['rows_in']:,}")
    return _Documents(vectors_dir, rows, made, vectors_key, morphemes)


def _finish(found: FoundTopics, out: str, plot, title: str, earlier: PreviousTopics | None, previous, params: dict, key: str,
            docs: _Documents, blocks: int, seconds: dict, started: float) -> RunResult:
    """Write ``topics.parquet``, the plot and the manifest."""
    table = found.table
    write_topics(out, table, key, max(earlier.last_id if earlier else -1, int(found.ids.max())))
    if plot:
        from kbatch.topicmodel.plot import write_plot

        write_plot(plot, table, found.points, title)
    counts = {"topics": int((table.topic >= 0).sum()), "outliers": int(table.loc[table.topic == -1, "size"].sum())}
    manifest = topics_manifest(params, key, docs.morphemes, docs.vectors_dir, blocks, table, found.metrics, found.how, counts, seconds,
                               started, docs.rows, plot)
    kept = int((found.ids <= earlier.last_id).sum()) if earlier else 0
    manifest["topic_ids"] = {"previous": str(previous) if earlier else None, "kept": kept, "new": len(found.ids) - kept}
    OutputDir(out).write_manifest(manifest)
    return RunResult(str(out), manifest)


def _check(n_topics, method: str, outliers: str, fit_sample: int, top_words: int, diversity: float, plot) -> int | None:
    """``n_topics`` as a number (``None`` for auto), after refusing options that cannot work."""
    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if outliers not in OUTLIERS:
        raise InputError(f"--outliers must be one of {', '.join(OUTLIERS)}, got {outliers!r}")
    if str(n_topics) == "auto":
        k = None
    elif str(n_topics).isdigit() and int(n_topics) >= 2:
        k = int(n_topics)
    else:
        raise InputError(f"--n-topics must be auto or a number of at least 2, got {n_topics!r}")
    if fit_sample < 100:
        raise InputError(f"--fit-sample must be at least 100, got {fit_sample}")
    if top_words < 1:
        raise InputError(f"--top-words must be at least 1, got {top_words}")
    if not 0 <= diversity <= 1:
        raise InputError(f"--keyword-diversity must be between 0 and 1, got {diversity}")
    if plot is not None and Path(plot).suffix.lower() not in (".html", ".png"):
        raise InputError(f"--plot must end in .html or .png, got {str(plot)!r}")
    return k


def document_vectors(source, embeddings, target: str, embedding: dict, run: RunOptions) -> tuple[str, int, Embedding, str]:
    """Directory, row count, model and prompt, and a fingerprint of the document vectors:
    ``embeddings`` as given (an ``embed`` output or Parquet with ``id`` and ``embedding``, made
    with ``embedding``'s prompt), else ``source`` embedded."""
    manifest_path = storage.join(storage.location(embeddings), MANIFEST) if embeddings is not None else None
    if embeddings is None or (storage.is_file(manifest_path) and json.loads(storage.read_bytes(manifest_path)).get("command") == "embed"):
        side = embedded_side(embeddings if embeddings is not None else source, target, embedding, run)
        made = Embedding(_model_of(side, embedding["trust_remote_code"]), prompt=side.prompt)
        directory, key = side.directory, side.params_key
    else:
        spec = resolve_model(embedding["model"] or DEFAULT_MODEL, trust_remote_code=embedding["trust_remote_code"])
        made, directory, key = Embedding(spec, prompt=embedding["prompt"]), storage.location(embeddings), None
    plan = plan_input(directory, "embedding", "id", text_param="embeddings", text_is_string=False)
    if not pa.types.is_fixed_size_list(storage.read_schema(plan.pieces[0].path).field("embedding").type):
        raise InputError(f"{embeddings}: 'embedding' must be a fixed-size list of floats, as kbatch embed writes")
    return directory, plan.rows, made, key or plan.fingerprint["paths_sha256"]


def _model_of(side, trust_remote_code: bool) -> ModelSpec:
    """The model that made ``side``'s vectors, to encode keyword candidates beside them: refused when
    the model found under its name or path is no longer that model."""
    spec = resolve_model(side.model.get("path") or side.model["name"], trust_remote_code=trust_remote_code)
    if spec.fingerprint != side.model["fingerprint"]:
        raise ModelError(f"{side.directory} holds vectors of {side.model['name']} (fingerprint {side.model['fingerprint']}), "
                         f"but the model at {spec.path} is now another ({spec.fingerprint}); embed again or pass that model's output")
    return spec


