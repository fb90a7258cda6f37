"""The topic steps after embedding and tokenizing, submitted to one cluster: fit on a
sample, assign every block (writing ``doc_topics``), describe, measure quality.

Every step runs on CPU workers; the client only ever receives small results (a fitted
model's summary, counts, the topics table).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kbatch.engine.run import follow, tree_reduce
from kbatch.engine.sink import PartitionSink
from kbatch.io import storage
from kbatch.stages.embed import Embed
from kbatch.topicmodel import tasks
from kbatch.topicmodel.continuity import PreviousTopics, carry_ids, public_table, public_topics
from kbatch.topicmodel.quality import nmi_ari, npmi, topic_diversity
from kbatch.topicmodel.summary import add_up

# Rows per block: enough for fast matrix products, few enough MiB per task (20,000 x 384 floats = 30 MiB).
MAX_BLOCK_ROWS = 20_000
MIN_BLOCK_ROWS = 1_000


@dataclass(frozen=True)
class Describing:
    """How found topics are described: representative documents, keywords (MMR-diversified
    with ``encoding`` when ``diversity`` > 0) and how many points a plot shows (0: no plot)."""

    representatives: int
    top_words: int
    diversity: float
    encoding: Embed | None
    plot_points: int


@dataclass(frozen=True)
class FoundTopics:
    """The topics table (public ids), the public id of each model topic, quality metrics, how
    the number of topics was chosen, and the plot's sample points (or ``None``)."""

    table: pd.DataFrame
    ids: np.ndarray
    metrics: dict
    how: str
    points: pd.DataFrame | None


class TopicSteps:
    """The topic steps after embedding and tokenizing, submitted to one cluster."""

    def __init__(self, cluster, progress: bool, seconds: dict[str, float]) -> None:
        self.client, self.cpu, self.progress, self.seconds = cluster.client, cluster.routing.cpu, progress, seconds

    def find(self, blocks, inputs: tasks.Inputs, settings: tasks.FitSettings, fit_sample: int, earlier: PreviousTopics | None,
             doc_topics: str, key: str, describing: Describing) -> FoundTopics:
        """Fit, give topics their public ids (``earlier``'s where they continue), assign every
        block into ``doc_topics``, describe and measure the topics."""
        sample, fitted, how = self.fit(blocks, inputs, settings, fit_sample)
        ids = carry_ids(self.on_worker(tasks.sample_centroids, fitted, sample).result(), earlier)
        storage.empty_directory(doc_topics)
        sink = PartitionSink(doc_topics, tasks.DOC_TOPICS, {"params": key})
        summary = self.assign(blocks, fitted, inputs, sink, describing.representatives, ids)
        table = self.on_worker(tasks.describe_topics, summary, fitted, describing.top_words, describing.diversity,
                               describing.encoding).result()
        metrics = self.quality(blocks, inputs, table, summary)
        table = public_table(table, ids, self.on_worker(vector_sums, summary).result())
        points = None
        if describing.plot_points:
            points = self.on_worker(tasks.plot_points, fitted, sample, describing.plot_points, settings.seed).result()
            points["topic"] = public_topics(points["topic"].to_numpy(), ids)
        return FoundTopics(table, ids, metrics, how, points)

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

    def assign(self, blocks, model, inputs: tasks.Inputs, sink: PartitionSink, keep: int, ids: np.ndarray):
        """Every block assigned and written, with a progress bar; the future of their summed summary."""
        start = time.perf_counter()
        futures = [self.client.submit(tasks.assign_block, b, model, inputs, sink, keep, ids, resources=self.cpu,
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


def block_rows(rows: int, cluster) -> int:
    """Rows per block: a few blocks per worker, within memory-friendly bounds."""
    workers = max(1, len(cluster.client.scheduler_info(n_workers=-1)["workers"]))
    return int(min(MAX_BLOCK_ROWS, max(MIN_BLOCK_ROWS, math.ceil(rows / (4 * workers)))))


def vector_sums(summary) -> np.ndarray:
    return summary.vector_sums


def _first(pair: tuple):
    return pair[0]


def _second(pair: tuple):
    return pair[1]


def _contingency(summary) -> pd.Series:
    return summary.contingency if summary.contingency is not None else pd.Series(dtype="int64")
