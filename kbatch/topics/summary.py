"""What assigning one partition to topics leaves behind, and how partitions add up.

A partition's summary holds counts, never documents: topic sizes, morpheme counts per
topic, vector sums per topic, its best representatives and gold-label contingency.
Summaries combine pairwise on the workers (a tree reduction), so no process ever
holds more than a few of them.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.topics.quality import contingency


@dataclass
class TopicSummary:
    """Counts of a set of documents; index ``topic + 1`` in the arrays (row 0 = outliers)."""

    sizes: np.ndarray  # int64, documents per topic
    vector_sums: np.ndarray  # float64, sum of document vectors per topic
    terms: pa.Table  # topic int32, term string, count int64
    representatives: pd.DataFrame  # topic, score, id: the best few documents per topic
    contingency: pd.Series | None  # documents per (gold label, topic)
    keep: int  # representatives kept per topic
    no_vector: int = 0  # documents left without a topic: they had no text, hence no vector


def summarize(topics: np.ndarray, scores: np.ndarray, vectors: np.ndarray, tokens: pa.ListArray, ids: pa.Array,
              n_topics: int, keep: int, labels: pa.Array | None = None, no_vector: int = 0) -> TopicSummary:
    """The summary of documents with a topic (-1 included; rows without a vector are left out by the caller)."""
    slot = topics.astype(np.int64) + 1
    sizes = np.bincount(slot, minlength=n_topics + 1)
    sums = np.zeros((n_topics + 1, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, slot, vectors)
    parents = pc.list_parent_indices(tokens)
    terms = pa.table({"topic": pa.array(topics).take(parents), "term": pc.list_flatten(tokens)})
    terms = terms.group_by(["topic", "term"]).aggregate([("term", "count")]).rename_columns(["topic", "term", "count"])
    best = pd.DataFrame({"topic": topics, "score": scores, "id": ids.cast(pa.string()).to_pandas()})
    best = best.sort_values("score", ascending=False, kind="stable").groupby("topic").head(keep)
    table = contingency(labels.to_pylist(), topics.tolist()) if labels is not None else None
    return TopicSummary(sizes, sums, terms, best.reset_index(drop=True), table, keep, no_vector)


def combine(*summaries: TopicSummary) -> TopicSummary:
    """One summary of all the documents behind ``summaries``."""
    first = summaries[0]
    terms = pa.concat_tables([s.terms for s in summaries]).group_by(["topic", "term"]).aggregate([("count", "sum")])
    best = pd.concat([s.representatives for s in summaries], ignore_index=True)
    best = best.sort_values("score", ascending=False, kind="stable").groupby("topic").head(first.keep).reset_index(drop=True)
    tables = [s.contingency for s in summaries if s.contingency is not None]
    table = None
    if tables:
        table = tables[0]
        for other in tables[1:]:
            table = table.add(other, fill_value=0)
    return TopicSummary(
        sum(s.sizes for s in summaries), sum(s.vector_sums for s in summaries),
        terms.rename_columns(["topic", "term", "count"]), best, table, first.keep, sum(s.no_vector for s in summaries),
    )


def add_up(*items):
    """The sum of ``items`` (summaries, co-occurrence counts): a picklable task for :func:`tree_reduce`."""
    return combine(*items) if isinstance(items[0], TopicSummary) else functools.reduce(operator.add, items)


def tree_reduce(client, futures: list, join: Callable, resources: dict | None, fan_in: int = 8):
    """``join`` futures ``fan_in`` at a time on the workers until one future is left."""
    while len(futures) > 1:
        futures = [client.submit(join, *futures[i : i + fan_in], resources=resources, pure=False) for i in range(0, len(futures), fan_in)]
    return futures[0]
