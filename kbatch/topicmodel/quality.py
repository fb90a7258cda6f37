"""Topic quality metrics that scale with the corpus: count per partition, add, then score.

Documents live in many Dask partitions, so no metric here sees them all at once. Each
metric is split in two: a small per-partition count whose sum over partitions is the
count of the whole corpus (so partitions can be combined in a tree reduction), and a
score computed from the summed counts alone.

- Coherence (NPMI): :func:`count_cooccurrence` per partition, ``+`` to combine, :func:`npmi`.
- Agreement with known labels (NMI, ARI): :func:`contingency` per partition,
  ``Series.add(other, fill_value=0)`` to combine, :func:`nmi_ari`.
- :func:`topic_diversity` needs only the topics' top words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import comb


@dataclass(eq=False)
class Cooccurrence:
    """Document counts of a fixed word list: how many documents contain each word and each pair.

    Counts of disjoint partitions add up to the counts of their union, which is what lets
    NPMI be computed over a corpus that never sits in one place. (``eq=False``: the
    generated ``==`` would fail on the array; compare fields instead.)
    """

    words: list[str]
    documents: int
    counts: np.ndarray  # len(words) × len(words) int64; [i, j]: documents with both; diagonal: documents with word i

    def __add__(self, other: Cooccurrence) -> Cooccurrence:
        """Counts of two disjoint sets of documents taken together."""
        if not isinstance(other, Cooccurrence):
            return NotImplemented
        if self.words != other.words:
            raise ValueError("co-occurrence counts of different word lists cannot be added")
        return Cooccurrence(list(self.words), self.documents + other.documents, self.counts + other.counts)


def count_cooccurrence(token_lists: Iterable[Sequence[str] | None], words: Sequence[str]) -> Cooccurrence:
    """Count, in one partition, the documents containing each word of ``words`` and each pair of them.

    A document counts once per word however often the word occurs in it; ``None`` or an
    empty list is a document without any of the words (it still counts towards
    ``documents``, the denominator of every probability). The document × word presence
    matrix is sparse, so ``X.T @ X`` gives all pair counts in one product.
    """
    words = list(words)
    column = {word: i for i, word in enumerate(words)}
    if len(column) != len(words):
        raise ValueError("words must not repeat")
    rows: list[int] = []
    columns: list[int] = []
    documents = 0
    for tokens in token_lists:
        if isinstance(tokens, str):
            raise TypeError("each document must be a list of tokens, not a string")
        if tokens is not None:
            present = {column[token] for token in tokens if token in column}
            rows.extend([documents] * len(present))
            columns.extend(present)
        documents += 1
    presence = sparse.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, columns)), shape=(documents, len(words)), dtype=np.int64)
    counts = np.asarray((presence.T @ presence).toarray(), dtype=np.int64)
    return Cooccurrence(words, documents, counts)


def npmi(cooc: Cooccurrence, topic_words: Sequence[Sequence[str]]) -> list[float]:
    """Coherence of each topic: mean NPMI over all pairs of its words, from document co-occurrence.

    ``NPMI(a, b) = log(P(a, b) / (P(a) P(b))) / -log P(a, b)``, probabilities being shares
    of documents, as gensim's ``c_npmi`` with a whole-document window, but without its
    epsilon: a pair never seen together scores -1 and a pair present in every document
    scores 1 (the limit of the formula). A topic with fewer than two words has no pair: nan.
    Every topic word must be in ``cooc.words``.
    """
    index = {word: i for i, word in enumerate(cooc.words)}
    missing = sorted({word for word in chain.from_iterable(topic_words) if word not in index})
    if missing:
        raise ValueError(f"topic words without counts (count them with count_cooccurrence): {missing[:10]}")
    n = cooc.documents
    scores: list[float] = []
    for topic in topic_words:
        ids = np.array([index[word] for word in topic], dtype=np.int64)
        if len(ids) < 2:
            scores.append(float("nan"))
            continue
        first, second = np.triu_indices(len(ids), k=1)
        a, b = ids[first], ids[second]
        joint = cooc.counts[a, b].astype(np.float64)
        single_a = cooc.counts[a, a].astype(np.float64)
        single_b = cooc.counts[b, b].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            pmi = np.log(joint * n / (single_a * single_b))
            pair = pmi / -np.log(joint / n)
        pair = np.where(joint == 0, -1.0, np.where(joint == n, 1.0, pair))
        scores.append(float(pair.mean()))
    return scores


def topic_diversity(topic_words: Sequence[Sequence[str]]) -> float:
    """Share of distinct words among all topics' top words (Dieng et al. 2020): 1 when no topic repeats another's words.

    0.0 when there are no words at all.
    """
    all_words = list(chain.from_iterable(topic_words))
    return len(set(all_words)) / len(all_words) if all_words else 0.0


def contingency(labels: Sequence, topics: Sequence[int]) -> pd.Series:
    """Count, in one partition, the documents of each (label, topic); documents without a label are left out.

    Tables of partitions add up with ``a.add(b, fill_value=0)``; :func:`nmi_ari` needs only
    their sum, never the label arrays.
    """
    if len(labels) != len(topics):
        raise ValueError(f"{len(labels)} labels but {len(topics)} topics")
    frame = pd.DataFrame({"label": np.asarray(labels, dtype=object), "topic": np.asarray(topics)})
    labelled = frame[frame["label"].notna()]
    return labelled.groupby(["label", "topic"], sort=False).size().rename("count")


def nmi_ari(table: pd.Series) -> tuple[float, float]:
    """NMI (arithmetic-mean normalisation) and ARI of labels against topics, from a summed :func:`contingency` table.

    Equal to sklearn's ``normalized_mutual_info_score`` and ``adjusted_rand_score`` on the
    underlying label arrays, special cases included (e.g. an empty table scores 1, 1).
    """
    cells = table[table > 0]
    n_ij = cells.to_numpy(dtype=np.float64)
    a = cells.groupby(level=0, sort=False).sum().to_numpy(dtype=np.float64)  # documents per label
    b = cells.groupby(level=1, sort=False).sum().to_numpy(dtype=np.float64)  # documents per topic
    a_of_cell = cells.groupby(level=0, sort=False).transform("sum").to_numpy(dtype=np.float64)
    b_of_cell = cells.groupby(level=1, sort=False).transform("sum").to_numpy(dtype=np.float64)
    n = n_ij.sum()
    return _nmi(n_ij, a, b, a_of_cell, b_of_cell, n), _ari(n_ij, a, b, n)


def _nmi(n_ij: np.ndarray, a: np.ndarray, b: np.ndarray, a_of_cell: np.ndarray, b_of_cell: np.ndarray, n: float) -> float:
    if len(a) == len(b) <= 1:  # neither side is split (or nothing at all): a perfect match, as sklearn has it
        return 1.0
    if len(a) == 1 or len(b) == 1:
        return 0.0
    mutual = max(float(np.sum(n_ij / n * np.log(n * n_ij / (a_of_cell * b_of_cell)))), 0.0)
    if mutual == 0.0:
        return 0.0
    h_labels = -float(np.sum(a / n * np.log(a / n)))
    h_topics = -float(np.sum(b / n * np.log(b / n)))
    return mutual / ((h_labels + h_topics) / 2)


def _ari(n_ij: np.ndarray, a: np.ndarray, b: np.ndarray, n: float) -> float:
    pairs_together = float(comb(n_ij, 2).sum())  # pairs in the same label and the same topic
    pairs_label = float(comb(a, 2).sum())
    pairs_topic = float(comb(b, 2).sum())
    expected = pairs_label * pairs_topic / float(comb(n, 2)) if n > 1 else 0.0
    maximum = (pairs_label + pairs_topic) / 2
    if maximum == expected:  # both all-in-one or both all-singletons (or nothing): identical partitions
        return 1.0
    return (pairs_together - expected) / (maximum - expected)
