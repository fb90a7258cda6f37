"""What assigning one partition to topics leaves behind, and how partitions add up.

A partition's summary holds counts, never documents: topic sizes, morpheme counts per
topic, vector sums per topic, its best representatives and gold-label contingency.
Summaries combine pairwise on the workers (a tree reduction), so no process ever
holds more than a few of them.

Morphemes that cannot describe a topic are left out before c-TF-IDF weighs them, since
the rarest words weigh most there: jamo (ㄷ) when counted, words of a single document
(간나, 네자) and one-syllable nouns that are not frequent in their topic (구, 잇) once all
counts are in (:func:`keyword_terms`; docs/decisions.md has the measurements).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers.noise import is_jamo_only
from kbatch.topicmodel.quality import contingency

# A keyword of a topic occurs in at least this many of its documents (all of them in a smaller topic).
MIN_DOCUMENTS = 2
# A one-syllable keyword also occurs in at least this share of its topic's documents and is
# among the topic's words in the most documents (굿, 잼, 짱 in short praise pass; 구, 잇 do not).
SYLLABLE_MIN_SHARE = 0.02
SYLLABLE_MAX_RANK = 20


@dataclass
class TopicSummary:
    """Counts of a set of documents; index ``topic + 1`` in the arrays (row 0 = outliers)."""

    sizes: np.ndarray  # int64, documents per topic
    vector_sums: np.ndarray  # float64, sum of document vectors per topic
    counts: pa.Table  # topic int32, term string, count int64 (occurrences), documents int64 (documents holding it)
    representatives: pd.DataFrame  # topic, score, id: the best few documents per topic
    contingency: pd.Series | None  # documents per (gold label, topic)
    keep: int  # representatives kept per topic
    no_vector: int = 0  # documents left without a topic: they had no text, hence no vector

    @property
    def terms(self) -> pa.Table:
        """The counts c-TF-IDF weighs: only terms that may describe their topic (:func:`keyword_terms`)."""
        return keyword_terms(self.counts, self.sizes)


def summarize(topics: np.ndarray, scores: np.ndarray, vectors: np.ndarray, tokens: pa.ListArray, ids: pa.Array,
              n_topics: int, keep: int, labels: pa.Array | None = None, no_vector: int = 0) -> TopicSummary:
    """The summary of documents with a topic (-1 included; rows without a vector are left out by the caller)."""
    slot = topics.astype(np.int64) + 1
    sizes = np.bincount(slot, minlength=n_topics + 1)
    sums = np.zeros((n_topics + 1, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, slot, vectors)
    best = pd.DataFrame({"topic": topics, "score": scores, "id": ids.cast(pa.string()).to_pandas()})
    best = best.sort_values("score", ascending=False, kind="stable").groupby("topic").head(keep)
    table = contingency(labels.to_pylist(), topics.tolist()) if labels is not None else None
    return TopicSummary(sizes, sums, count_terms(topics, tokens), best.reset_index(drop=True), table, keep, no_vector)


def count_terms(topics: np.ndarray, tokens: pa.ListArray) -> pa.Table:
    """Occurrences and documents of each (topic, term), without jamo-only terms (never a keyword)."""
    parents = pc.list_parent_indices(tokens)
    flat = pa.table({"topic": pa.array(topics).take(parents), "term": pc.list_flatten(tokens), "document": parents})
    counts = flat.group_by(["topic", "term"]).aggregate([("term", "count"), ("document", "count_distinct")])
    counts = counts.rename_columns(["topic", "term", "count", "documents"])
    jamo = pa.array([term for term in pc.unique(counts["term"]).to_pylist() if is_jamo_only(term)], pa.string())
    return counts.filter(pc.invert(pc.is_in(counts["term"], value_set=jamo)))


def keyword_terms(counts: pa.Table, sizes: np.ndarray) -> pa.Table:
    """The rows of ``counts`` whose term may describe its topic, given the topic ``sizes`` (index ``topic + 1``).

    A term must be in :data:`MIN_DOCUMENTS` of the topic's documents; a one-syllable term
    must also be frequent there (:data:`SYLLABLE_MIN_SHARE`, :data:`SYLLABLE_MAX_RANK`):
    MeCab cuts misspellings into syllables tagged as nouns, and their rarity is what
    c-TF-IDF rewards.
    """
    frame = counts.select(["topic", "term", "documents"]).to_pandas()
    held, size = frame.documents.to_numpy(), sizes[frame.topic.to_numpy() + 1]
    rank = frame.groupby("topic").documents.rank(method="min", ascending=False).to_numpy()  # ties share a rank
    syllable = (frame.term.str.len() == 1).to_numpy()
    frequent = (held >= SYLLABLE_MIN_SHARE * size) & (rank <= SYLLABLE_MAX_RANK)
    return counts.filter(pa.array((held >= np.minimum(MIN_DOCUMENTS, size)) & (~syllable | frequent)))


def combine(*summaries: TopicSummary) -> TopicSummary:
    """One summary of all the documents behind ``summaries``."""
    first = summaries[0]
    counts = pa.concat_tables([s.counts for s in summaries]).group_by(["topic", "term"]).aggregate([("count", "sum"), ("documents", "sum")])
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
        counts.rename_columns(["topic", "term", "count", "documents"]), best, table, first.keep, sum(s.no_vector for s in summaries),
    )


def add_up(*items):
    """The sum of ``items`` (summaries, co-occurrence counts): a picklable task for :func:`tree_reduce`."""
    return combine(*items) if isinstance(items[0], TopicSummary) else functools.reduce(operator.add, items)
