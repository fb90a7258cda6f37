"""Topic ids that last from one run to the next.

Clustering numbers its topics anew every run, so "topic 3" on Monday and "topic 3" the next
Monday are unrelated, and a dashboard of topic sizes over time means nothing. A run given
the previous run's output (``topics --previous DIR``; a job passes its last night's) pairs
its topics with the previous ones by the cosine of their centroids in the embedding space
(one-to-one, best total: the Hungarian method) and keeps the previous id of every topic
close enough to one of them; the other topics get ids no earlier run used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from kbatch.errors import InputError
from kbatch.io import storage
from kbatch.topicmodel.clustering import unit_rows
from kbatch.vectors.columns import vector_matrix

# Least cosine between two runs' centroids for them to be one topic. Measured on 2,000 NSMC
# reviews (use-m3, k-means k=8 on two 90% samples with two seeds): paired topics 0.78-1.00
# (median 0.99), unpaired 0.50 median and up to 0.86 - so the pairing, not the threshold,
# tells topics apart; the threshold only stops a new topic from taking the id of one that is gone.
MIN_COSINE = 0.7


@dataclass(frozen=True)
class PreviousTopics:
    """The ids and centroids (unit, in the embedding space) of an earlier run's topics, and the
    largest id it or any run before it used."""

    ids: np.ndarray
    centroids: np.ndarray
    last_id: int

    @classmethod
    def read(cls, directory: str | os.PathLike[str]) -> PreviousTopics | None:
        """``directory``'s topics, or ``None`` when it holds no complete ``topics`` output (a first run)."""
        path = storage.join(storage.location(directory), "topics.parquet")
        if not storage.is_file(path):
            return None
        schema = storage.read_schema(path)
        if "centroid" not in schema.names:
            raise InputError(f"{path} has no topic centroids (written by an older kbatch); run once without `previous`")
        table = storage.read_table(path, ["topic", "centroid"])
        topics = table.filter(pc.greater_equal(table.column("topic"), 0))
        if topics.num_rows == 0:
            return None
        centroids, _ = vector_matrix(topics.column("centroid").combine_chunks())
        ids = topics.column("topic").to_numpy().astype(np.int64)
        recorded = json.loads((schema.metadata or {}).get(b"kbatch", b"{}")).get("last_topic_id", -1)
        return cls(ids, unit_rows(centroids), max(int(recorded), int(ids.max())))


def carry_ids(centroids: np.ndarray, previous: PreviousTopics | None, min_cosine: float = MIN_COSINE) -> np.ndarray:
    """The public id of each of this run's topics (rows of ``centroids``, any scale).

    >>> carry_ids(np.eye(3, dtype=np.float32)[[2, 0, 1]], PreviousTopics(np.array([7, 8, 9]), np.eye(3, dtype=np.float32), 9))
    array([9, 7, 8])
    """
    if previous is None:
        return np.arange(len(centroids), dtype=np.int64)
    from scipy.optimize import linear_sum_assignment

    if centroids.shape[1] != previous.centroids.shape[1]:
        raise InputError(f"`previous` topics have {previous.centroids.shape[1]}-dimensional centroids, these {centroids.shape[1]}: "
                         "another model; drop `previous`")
    similarity = unit_rows(centroids.astype(np.float32)) @ previous.centroids.T
    rows, columns = linear_sum_assignment(-similarity)
    ids = np.full(len(centroids), -1, dtype=np.int64)
    kept = similarity[rows, columns] >= min_cosine
    ids[rows[kept]] = previous.ids[columns[kept]]
    new = np.flatnonzero(ids < 0)
    ids[new] = previous.last_id + 1 + np.arange(len(new))
    return ids


def public_topics(topics: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The model's topic numbers as public ids (int32); outliers stay -1."""
    return np.where(topics >= 0, ids[np.maximum(topics, 0)], -1).astype(np.int32)


def public_table(table: pd.DataFrame, ids: np.ndarray, vector_sums: np.ndarray) -> pd.DataFrame:
    """The topics table by public ids (outliers stay -1, first), with each topic's ``centroid``: the
    unit mean vector of all its documents, which the next run pairs its own topics with."""
    topics = table["topic"].to_numpy()
    centroids = unit_rows(vector_sums[topics + 1].astype(np.float32))
    centroid = [c if t >= 0 else None for t, c in zip(topics, centroids, strict=True)]
    return table.assign(topic=public_topics(topics, ids), centroid=centroid).sort_values("topic", kind="stable").reset_index(drop=True)
