"""``kbatch topics``: embed → morphemes → fit on a sample → assign every block → c-TF-IDF → quality.

Embeddings and morphemes are ordinary ``embed`` and ``tokenize`` outputs under the output
directory, so a rerun resumes them; the topic steps after them are cheap and rerun whole.
Blocks are row ranges of the vectors; each is assigned on a worker, which writes its
``doc_topics`` file and returns a summary of counts. Summaries are added up in a tree on
the workers: no process ever holds all documents, their morphemes or their vectors.

>>> topics("examples/reviews.parquet", "out/topics", n_topics=8)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.analyzers import DEFAULT_ANALYZER
from kbatch.commands.match import embedded_side
from kbatch.commands.tokenize import tokenize
from kbatch.engine.config import ClusterConfig, load_cluster_config
from kbatch.engine.frame import RunOptions, check_output_apart, connect, performance_report
from kbatch.engine.manifest import RunResult, params_key, versions
from kbatch.engine.run import follow
from kbatch.errors import InputError, ModelError
from kbatch.io.lock import output_lock
from kbatch.io.reader import plan_input
from kbatch.io.writer import MANIFEST, OutputDir, PartitionWriter, atomic_path
from kbatch.models.resolve import DEFAULT_MODEL, ModelSpec, resolve_model
from kbatch.topicmodel import tasks
from kbatch.topicmodel.continuity import PreviousTopics, carry_ids, public_table, public_topics
from kbatch.topicmodel.quality import nmi_ari, npmi, topic_diversity
from kbatch.topicmodel.summary import add_up, tree_reduce

METHODS = ("hdbscan", "kmeans", "minibatch", "ctm")
# hdbscan: outliers close to a topic join it (the default), or all stay outliers.
OUTLIERS = ("nearest", "keep")
# Rows per block: enough for fast matrix products, few enough MiB per task (20,000 x 384 floats = 30 MiB).
MAX_BLOCK_ROWS = 20_000
MIN_BLOCK_ROWS = 1_000
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
    ``cache`` is an embedding cache directory (:mod:`kbatch.vectors.cache`). ``previous`` is an earlier
    ``topics`` output: a topic that is one of its topics keeps that topic's id
    (:mod:`kbatch.topicmodel.continuity`). ``options`` are those of
    :class:`~kbatch.engine.frame.RunOptions` (``partition_rows`` applies to the embed and tokenize steps).
    """
    earlier = PreviousTopics.read(previous) if previous is not None else None
    k = _check(n_topics, method, outliers, fit_sample, top_words, keyword_diversity, plot)
    run_options = RunOptions(**options)
    text_col, id_col, progress, log = run_options.text_col, run_options.id_col, run_options.progress, run_options.log
    started = time.perf_counter()
    out = Path(output)
    for read in (source, embeddings) if embeddings is not None else (source,):
        check_output_apart(out, read)
    if model is not None or embeddings is None:
        resolve_model(model or DEFAULT_MODEL, trust_remote_code=trust_remote_code)  # refused or missing: before any cluster starts
    params = {"command": "topics", "n_topics": n_topics, "method": method, "fit_sample": fit_sample, "reduce_dims": reduce_dims,
              "min_cluster_size": min_cluster_size, "outliers": outliers, "top_words": top_words, "keyword_diversity": keyword_diversity,
              "representatives": representatives, "analyzer": analyzer, "pos": pos, "stopwords": str(stopwords),
              "label_col": label_col, "seed": seed, "text_col": text_col, "id_col": id_col}
    cluster = run_options.cluster
    with output_lock(out):
        config = cluster if isinstance(cluster, ClusterConfig) else load_cluster_config(cluster)
        seconds: dict[str, float] = {}
        with connect(config, run_options.client, log) as connected, performance_report(run_options.report):
            common = {"text_col": text_col, "id_col": id_col, "client": connected.client, "progress": progress, "log": log,
                      "overwrite": run_options.overwrite, "partition_rows": run_options.partition_rows}
            step = time.perf_counter()
            vectors_dir, vector_rows, spec, vectors_key = _document_vectors(
                source, embeddings, out / "_embeddings", model, {**common, "cache": cache, "trust_remote_code": trust_remote_code})
            seconds["embed"] = time.perf_counter() - step
            step = time.perf_counter()
            morphemes = tokenize(source, out / "_tokens", analyzer=analyzer, pos=pos, stopwords=stopwords, **common)
            print(f"kbatch {morphemes.summary()}", file=log)
            seconds["tokenize"] = time.perf_counter() - step
            if morphemes.manifest["rows_in"] != vector_rows:
                raise InputError(f"--embeddings has {vector_rows:,} rows but the source has {morphemes.manifest['rows_in']:,}")
            params.update(input=morphemes.manifest["params"]["input"], vectors=vectors_key)
            key = params_key(params)
            OutputDir(out).prepare(key, 0, run_options.overwrite)
            source_key = tuple(map(str, source)) if isinstance(source, (list, tuple)) else str(source)
            if label_col:
                plan_input(source, label_col, text_flag="--label-col", text_is_string=False)
            inputs = tasks.Inputs(str(out / "_tokens"), source_key, text_col, label_col)
            run = _Run(connected, progress, seconds)
            blocks = plan_input(vectors_dir, "embedding", "id", _block_rows(vector_rows, connected), text_is_string=False).pieces
            settings = tasks.FitSettings(method, k, reduce_dims or (HDBSCAN_DIMS if method == "hdbscan" else None),
                                         min_cluster_size, seed, CTM_EPOCHS, outliers)
            sample, fitted, how = run.fit(blocks, inputs, settings, fit_sample)
            ids = carry_ids(run.on_worker(tasks.sample_centroids, fitted, sample).result(), earlier)
            doc_topics = out / "doc_topics"
            shutil.rmtree(doc_topics, ignore_errors=True)
            doc_topics.mkdir(parents=True)
            summary = run.assign(blocks, fitted, inputs, PartitionWriter(str(doc_topics)), {"params": key}, representatives, ids)
            encoding = _word_encoding(spec, connected) if keyword_diversity > 0 else None
            table = run.on_worker(tasks.describe_topics, summary, fitted, top_words, keyword_diversity, encoding).result()
            metrics = run.quality(blocks, inputs, table, summary)
            table = public_table(table, ids, run.on_worker(_vector_sums, summary).result())
            points = run.on_worker(tasks.plot_points, fitted, sample, PLOT_POINTS, seed).result() if plot else None
            if points is not None:
                points["topic"] = public_topics(points["topic"].to_numpy(), ids)
        last_id = max(earlier.last_id if earlier else -1, int(ids.max()))
        _write_topics(out, table, key, last_id)
        if plot:
            from kbatch.topicmodel.plot import write_plot

            write_plot(plot, table, points, f"{len(table[table.topic >= 0])} topics of {vector_rows:,} documents ({method})")
        counts = {"topics": int((table.topic >= 0).sum()), "outliers": int(table.loc[table.topic == -1, "size"].sum())}
        manifest = _manifest(params, key, morphemes, vectors_dir, len(blocks), table, metrics, how, counts, seconds, started, vector_rows,
                             plot)
        kept = int((ids <= earlier.last_id).sum()) if earlier else 0
        manifest["topic_ids"] = {"previous": str(previous) if earlier else None, "kept": kept, "new": len(ids) - kept}
        OutputDir(out).write_manifest(manifest)
        return RunResult(str(out), manifest)


class _Run:
    """The topic steps after embedding and tokenizing, submitted to one cluster."""

    def __init__(self, cluster, progress: bool, seconds: dict[str, float]) -> None:
        self.client, self.cpu, self.progress, self.seconds = cluster.client, cluster.routing.cpu, progress, seconds

    def on_worker(self, function, *args):
        """One task on a CPU worker (the client only ever receives small results)."""
        return self.client.submit(function, *args, resources=self.cpu, pure=False)

    def fit(self, blocks, inputs: tasks.Inputs, settings: tasks.FitSettings, fit_sample: int):
        """A sample of every block joined on a worker and fitted there; returns sample and model futures and how k was chosen."""
        start = time.perf_counter()
        fraction = min(1.0, fit_sample / sum(b.rows for b in blocks))
        samples = [self.client.submit(tasks.sample_block, b, inputs, fraction, settings.seed, resources=self.cpu) for b in blocks]
        sample = tree_reduce(self.client, samples, tasks.join_samples, self.cpu)
        fitted = self.on_worker(tasks.fit_topics, sample, settings)
        model = self.client.submit(_first, fitted, resources=self.cpu)
        how = self.client.submit(_second, fitted, resources=self.cpu).result()
        if settings.method == "minibatch":
            for block in blocks:
                model = self.client.submit(tasks.update_block, model, block, resources=self.cpu, pure=False)
            model = self.client.submit(tasks.finish_minibatch, model, sample, resources=self.cpu)
            model.result()
        self.seconds["fit"] = time.perf_counter() - start
        return sample, model, how

    def assign(self, blocks, model, inputs: tasks.Inputs, writer: PartitionWriter, metadata: dict, keep: int, ids: np.ndarray):
        """Every block assigned and written, with a progress bar; the future of their summed summary."""
        start = time.perf_counter()
        futures = [self.client.submit(tasks.assign_block, b, model, inputs, writer, metadata, keep, ids, resources=self.cpu,
                                      priority=-b.index, pure=False) for b in blocks]
        follow(self.client, futures, [b.rows for b in blocks], "documents", self.progress)
        self.seconds["assign"] = time.perf_counter() - start
        start = time.perf_counter()
        summary = tree_reduce(self.client, futures, add_up, self.cpu)
        summary.result()
        self.seconds["reduce"] = time.perf_counter() - start
        return summary

    def quality(self, blocks, inputs: tasks.Inputs, table: pd.DataFrame, summary) -> dict:
        """NPMI and diversity of the topics' words (co-occurrence counted per block, summed in a tree); NMI/ARI with labels."""
        start = time.perf_counter()
        topic_words = [list(w) for w in table.loc[table.topic >= 0, "keywords"]]
        words = sorted({w for ws in topic_words for w in ws})
        metrics: dict = {"topic_diversity": round(topic_diversity(topic_words), 4)}
        if words:
            counted = [self.client.submit(tasks.cooccurrence_block, b, inputs, words, resources=self.cpu) for b in blocks]
            per_topic = npmi(tree_reduce(self.client, counted, add_up, self.cpu).result(), topic_words)
            metrics["npmi"] = round(float(np.nanmean(per_topic)), 4) if not np.all(np.isnan(per_topic)) else None
            metrics["npmi_per_topic"] = [None if math.isnan(v) else round(v, 4) for v in per_topic]
        if inputs.label_col:
            nmi, ari = nmi_ari(self.client.submit(_contingency, summary, resources=self.cpu).result())
            metrics.update(nmi=round(nmi, 4), ari=round(ari, 4), label_col=inputs.label_col)
        self.seconds["quality"] = time.perf_counter() - start
        return metrics


def _vector_sums(summary) -> np.ndarray:
    return summary.vector_sums


def _first(pair: tuple):
    return pair[0]


def _second(pair: tuple):
    return pair[1]


def _contingency(summary) -> pd.Series:
    return summary.contingency if summary.contingency is not None else pd.Series(dtype="int64")


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


def _block_rows(rows: int, cluster) -> int:
    """Rows per block: a few blocks per worker, within memory-friendly bounds."""
    workers = max(1, len(cluster.client.scheduler_info(n_workers=-1)["workers"]))
    return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, math.ceil(rows / (4 * workers)))))


def _document_vectors(source, embeddings, target: Path, model: str | None, options: dict) -> tuple[str, int, ModelSpec, str]:
    """Directory, row count, model and a fingerprint of the document vectors: ``embeddings``
    as given (an ``embed`` output or Parquet with ``id`` and ``embedding``), else ``source`` embedded."""
    manifest_path = Path(embeddings) / MANIFEST if embeddings is not None else None
    if embeddings is None or (manifest_path.is_file() and json.loads(manifest_path.read_text()).get("command") == "embed"):
        side = embedded_side(embeddings if embeddings is not None else source, target, model=model, **options)
        directory, spec, key = side.directory, _model_of(side, options.get("trust_remote_code", False)), side.params_key
    else:
        spec = resolve_model(model or DEFAULT_MODEL, trust_remote_code=options.get("trust_remote_code", False))
        directory, key = str(embeddings), None
    plan = plan_input(directory, "embedding", "id", text_flag="--embeddings 'embedding' column", text_is_string=False)
    if not pa.types.is_fixed_size_list(pq.read_schema(plan.pieces[0].path).field("embedding").type):
        raise InputError(f"{embeddings}: 'embedding' must be a fixed-size list of floats, as kbatch embed writes")
    return directory, plan.rows, spec, key or plan.fingerprint["paths_sha256"]


def _model_of(side, trust_remote_code: bool) -> ModelSpec:
    """The model that made ``side``'s vectors, to encode keyword candidates beside them: refused when
    the model found under its name or path is no longer that model."""
    spec = resolve_model(side.model.get("path") or side.model["name"], trust_remote_code=trust_remote_code)
    if spec.fingerprint != side.model["fingerprint"]:
        raise ModelError(f"{side.directory} holds vectors of {side.model['name']} (fingerprint {side.model['fingerprint']}), "
                         f"but the model at {spec.path} is now another ({spec.fingerprint}); embed again or pass that model's output")
    return spec


def _word_encoding(spec: ModelSpec, cluster) -> tuple:
    """The subword and encode stages that embed candidate words for MMR, as the documents were."""
    from kbatch.commands.embed import make_encode
    from kbatch.stages import SubwordTokenize

    return SubwordTokenize.for_model(spec), make_encode(cluster, spec, None, True, "float32", None, None)


def _write_topics(out: Path, table: pd.DataFrame, key: str, last_id: int) -> None:
    """``topics.parquet``, recording the largest topic id this run or any before it used, so that a
    later run never gives a new topic the id of one that is gone."""
    dimension = len(next(c for c in table["centroid"] if c is not None)) if (table.topic >= 0).any() else 0
    schema = pa.schema([("topic", pa.int32()), ("size", pa.int64()), ("keywords", pa.list_(pa.string())),
                        ("keyword_scores", pa.list_(pa.float32())), ("representative_ids", pa.list_(pa.string())),
                        ("centroid", pa.list_(pa.float32(), dimension))],
                       metadata={b"kbatch": json.dumps({"params": key, "last_topic_id": last_id}).encode()})
    with atomic_path(out / "topics.parquet") as tmp:
        pq.write_table(pa.Table.from_pandas(table, schema=schema, preserve_index=False), tmp)


def _manifest(params: dict, key: str, tokens: RunResult, vectors_dir: str, blocks: int, table: pd.DataFrame, metrics: dict, how: str,
              counts: dict, seconds: dict, started: float, rows: int, plot) -> dict:
    total = time.perf_counter() - started
    no_topic = rows - int(table["size"].sum())
    topic_steps = sum(v for k, v in seconds.items() if k not in ("embed", "tokenize"))
    return {
        "command": "topics",
        "status": "complete",
        "params_key": key,
        "params": params,
        "input": tokens.manifest["input"],
        "embeddings": vectors_dir,
        "tokens": {"directory": tokens.output, "analyzer": tokens.manifest["analyzer"]},
        "n_topics_chosen": how,
        "partitions_total": blocks,
        "partitions_done": blocks,
        "partitions_reused": 0,
        "rows_in": rows,
        "rows_out": rows,
        "rows_done": rows - no_topic,
        "rows_skipped": {"no_text": no_topic} if no_topic else {},
        "counts": counts,
        "outlier_share": round(counts["outliers"] / (rows - no_topic), 4) if rows > no_topic else 0.0,
        "metrics": metrics,
        "outputs": {"doc_topics": "doc_topics", "topics": "topics.parquet", "plot": str(plot) if plot else None},
        "output_schema": {"doc_topics": {"id": "id", "topic": "int32 (-1 = outlier, null = no text)", "score": "float32"},
                          "topics": {"topic": "int32", "size": "int64", "keywords": "list<string>",
                                     "keyword_scores": "list<float32>", "representative_ids": "list<string>",
                                     "centroid": "fixed_size_list<float32>[dim]"}},
        "seconds": {"total": round(total, 3), **{k: round(v, 3) for k, v in seconds.items()}},
        "throughput_rows_per_s": {"total": round(rows / total, 2),
                                  "processing": round(rows / topic_steps, 2) if topic_steps else 0.0},
        "versions": versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
