"""The tasks ``topics`` runs on the workers, one partition (block of rows) each.

A block is a row range of the document vectors; its morphemes, texts and gold labels
are read for the same rows from wherever they are (:mod:`kbatch.io.rows`), so nothing
but small samples, fitted models and summaries ever travels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.engine.sink import PartitionReport, PartitionSink
from kbatch.errors import InputError
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece, read_piece_table
from kbatch.io.rows import Source, read_rows
from kbatch.stages.base import ID
from kbatch.stages.embed import Embed
from kbatch.topicmodel.clustering import OUTLIER_PERCENTILE, fit_hdbscan, fit_kmeans, start_minibatch, unit_rows
from kbatch.topicmodel.continuity import public_topics
from kbatch.topicmodel.summary import TopicSummary, summarize
from kbatch.vectors.columns import vector_matrix

# Characters of a document shown in the plot's tooltip.
TOOLTIP_CHARS = 80
# --keyword-diversity: c-TF-IDF words per wanted keyword that MMR chooses from.
MMR_CANDIDATES = 3


@dataclass(frozen=True)
class Inputs:
    """Where a block's vectors, morphemes, texts and labels are."""

    tokens: str
    text: Source
    text_col: str
    label_col: str | None = None


@dataclass(frozen=True)
class FitSettings:
    method: str
    n_topics: int | None
    dims: int | None
    min_cluster_size: int | None
    seed: int
    epochs: int
    outliers: str  # hdbscan: "nearest" (outliers close to a topic join it) or "keep"


@dataclass
class Sample:
    """Sampled documents of one or more blocks (those with a vector)."""

    ids: pa.Array
    vectors: np.ndarray
    tokens: pa.ListArray
    texts: pa.Array


# What doc_topics holds (topic -1: an outlier; null: a document without text).
DOC_TOPICS = {"id": ID, "topic": pa.int32(), "score": pa.float32()}


def read_block(piece: Piece) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Ids, vectors and has-vector mask of one block."""
    table = read_piece_table(piece, ["id", "embedding"])
    vectors, has_vector = vector_matrix(table.column("embedding").combine_chunks())
    return table.column("id").combine_chunks(), vectors, has_vector


def sample_block(piece: Piece, inputs: Inputs, fraction: float, seed: int) -> Sample:
    """A seeded random share ``fraction`` of a block's documents with a vector."""
    ids, vectors, has_vector = read_block(piece)
    chosen = has_vector & (np.random.default_rng([seed, piece.index]).random(len(ids)) < fraction)
    rows = pa.array(np.flatnonzero(chosen))
    start, stop = piece.row_offset, piece.row_offset + piece.rows
    texts = read_rows(inputs.text, inputs.text_col, start, stop).take(rows).cast(pa.string())
    return Sample(
        ids.take(rows), vectors[chosen], read_rows(inputs.tokens, "tokens", start, stop, is_string=False).take(rows),
        pa.compute.utf8_slice_codeunits(texts, 0, TOOLTIP_CHARS),
    )


def join_samples(*samples: Sample) -> Sample:
    return Sample(
        pa.concat_arrays([s.ids for s in samples]), np.concatenate([s.vectors for s in samples]),
        pa.concat_arrays([s.tokens for s in samples]), pa.concat_arrays([s.texts for s in samples]),
    )


def fit_topics(sample: Sample, settings: FitSettings):
    """The fitted model (or, for mini-batch k-means, the state every block then updates) and how k was chosen."""
    if len(sample.ids) < 2:
        raise InputError(f"no documents with text to find topics in ({len(sample.ids)} sampled); check `text_col`")
    if settings.method == "hdbscan":
        percentile = OUTLIER_PERCENTILE if settings.outliers == "nearest" else None
        return fit_hdbscan(sample.vectors, settings.n_topics, settings.dims, settings.min_cluster_size, settings.seed, percentile)
    if settings.method == "minibatch":
        return start_minibatch(sample.vectors, settings.n_topics, settings.dims, settings.seed)
    model, how = fit_kmeans(sample.vectors, settings.n_topics, settings.dims, settings.seed)
    if settings.method == "kmeans":
        return model, how
    from kbatch.topicmodel.contextual import fit_ctm

    ctm = fit_ctm(sample.vectors, sample.tokens, model.n_topics, settings.seed, settings.epochs)
    return ctm.covering(sample.vectors, sample.tokens), how


def update_block(state: tuple, piece: Piece) -> tuple:
    """Fold one block into a mini-batch k-means (blocks are chained one after another)."""
    from kbatch.topicmodel.clustering import update_minibatch

    _, vectors, has_vector = read_block(piece)
    return update_minibatch(state, vectors[has_vector])


def finish_minibatch(state: tuple, sample: Sample):
    """The streamed mini-batch k-means as a model, every topic won by some sample document."""
    from kbatch.topicmodel.clustering import finish_minibatch as finish

    return finish(state, sample.vectors)


def assign_block(piece: Piece, model, inputs: Inputs, sink: PartitionSink, keep: int, public_ids: np.ndarray) -> TopicSummary:
    """Give every document of a block its topic, write ``id, topic, score`` (the topic by its public
    id, :mod:`kbatch.topicmodel.continuity`), and summarize the block (by the model's topic numbers)."""
    ids, vectors, has_vector = read_block(piece)
    start, stop = piece.row_offset, piece.row_offset + piece.rows
    tokens = read_rows(inputs.tokens, "tokens", start, stop, is_string=False)
    topic = np.full(len(ids), -1, dtype=np.int32)
    score = np.zeros(len(ids), dtype=np.float32)
    rows = pa.array(np.flatnonzero(has_vector))
    topic[has_vector], score[has_vector] = model.assign(vectors[has_vector], tokens.take(rows))
    public = public_topics(topic, public_ids)
    table = pa.table({"id": ids, "topic": pa.array(public, mask=~has_vector), "score": pa.array(score, mask=~has_vector)})
    sink.write(table, PartitionReport(piece.index, len(ids), piece_digest(piece)))
    labels = read_rows(inputs.text, inputs.label_col, start, stop, is_string=False).take(rows) if inputs.label_col else None
    return summarize(topic[has_vector], score[has_vector], vectors[has_vector], tokens.take(rows), ids.take(rows),
                        model.n_topics, keep, labels, int((~has_vector).sum()))


def sample_centroids(model, sample: Sample) -> np.ndarray:
    """Each topic's mean sample vector (unit; zeros for a topic no sample document joins): what a
    later run recognizes the topic by."""
    topic, _ = model.assign(sample.vectors, sample.tokens)
    sums = np.zeros((model.n_topics, sample.vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, topic[topic >= 0], sample.vectors[topic >= 0])
    return unit_rows(sums.astype(np.float32))


def plot_points(model, sample: Sample, limit: int, seed: int) -> pd.DataFrame:
    """At most ``limit`` sample documents on a 2-D PCA map of their vectors, with their topic and text."""
    from sklearn.decomposition import PCA

    rows = np.random.default_rng(seed).permutation(len(sample.ids))[:limit]
    vectors = sample.vectors[rows]
    topic, _ = model.assign(vectors, sample.tokens.take(pa.array(rows)))
    xy = PCA(n_components=2, random_state=seed).fit_transform(unit_rows(vectors)) if len(rows) > 2 else np.zeros((len(rows), 2))
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "topic": topic, "text": sample.texts.take(pa.array(rows)).to_pylist()})


def describe_topics(summary: TopicSummary, model, top_words: int, diversity: float, encoding: Embed | None) -> pd.DataFrame:
    """One row per topic that has documents: size, keywords (c-TF-IDF, or the CTM's own words) and representative ids.

    With ``diversity`` and ``encoding`` (the stages that embedded the documents), the best c-TF-IDF
    words are re-ranked by MMR against the topic's mean document vector.
    """
    from kbatch.topicmodel.ctfidf import class_tfidf
    from kbatch.vectors.mmr import mmr

    if hasattr(model, "top_words"):
        words = dict(enumerate(model.top_words(top_words)))
    elif encoding is None:
        words = class_tfidf(summary.terms, top_words)
    else:
        words = class_tfidf(summary.terms, top_words * MMR_CANDIDATES)
        for topic, (candidates, _) in words.items():
            if candidates:
                chosen, scores = mmr(unit_rows(summary.vector_sums[topic + 1][None])[0].astype(np.float32),
                                     encoding.strings(candidates), top_words, diversity)
                words[topic] = ([candidates[i] for i in chosen], scores.tolist())
    best = summary.representatives.groupby("topic")["id"].apply(list)
    rows = [
        {"topic": topic, "size": int(summary.sizes[topic + 1]), "keywords": words.get(topic, ([], []))[0],
         "keyword_scores": words.get(topic, ([], []))[1], "representative_ids": best.get(topic, [])}
        for topic in range(-1, len(summary.sizes) - 1) if summary.sizes[topic + 1]
    ]
    return pd.DataFrame(rows, columns=["topic", "size", "keywords", "keyword_scores", "representative_ids"])


def cooccurrence_block(piece: Piece, inputs: Inputs, words: list[str]):
    """How many of a block's documents hold each topic word and each pair of them (for NPMI)."""
    from kbatch.topicmodel.quality import count_cooccurrence

    tokens = read_rows(inputs.tokens, "tokens", piece.row_offset, piece.row_offset + piece.rows, is_string=False)
    return count_cooccurrence(tokens.to_pylist(), words)
