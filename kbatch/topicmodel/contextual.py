"""CombinedTM as a topic model of the pipeline: bag of morphemes + document vector -> topic.

The vocabulary is the sample's most frequent morphemes; every partition's documents are
turned into bags of those words on their worker and given their most probable topic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from kbatch.analyzers.noise import is_jamo_only
from kbatch.errors import InputError
from kbatch.topicmodel.clustering import best_topics, cover_all
from kbatch.topicmodel.ctm import CombinedTM, CTMSettings

VOCABULARY_SIZE = 2_000
# Gradient steps at least: a small sample needs more epochs to train as far as a large one.
MIN_STEPS = 1_000
MIN_DOCUMENTS = 2  # a word in fewer sample documents says nothing about a topic


@dataclass(frozen=True)
class ContextualTopics:
    """A fitted CombinedTM and its vocabulary; the topic of a document is its most probable one."""

    vocabulary: tuple[str, ...]
    model: CombinedTM
    bias: np.ndarray | None = None  # per-topic additions to probabilities that leave no topic empty (see cover_all)

    @property
    def n_topics(self) -> int:
        return self.model.n_topics

    def scores(self, vectors: np.ndarray, tokens: pa.ListArray) -> np.ndarray:
        return self.model.transform(bags(tokens, self.vocabulary), vectors)

    def assign(self, vectors: np.ndarray, tokens: pa.ListArray) -> tuple[np.ndarray, np.ndarray]:
        """Topic (int32) and its probability (float32) of each row."""
        return best_topics(self.scores(vectors, tokens), self.bias)

    def covering(self, sample: np.ndarray, tokens: pa.ListArray) -> ContextualTopics:
        """This model with every topic won by some document of ``sample``."""
        return replace(self, bias=cover_all(self.scores(sample, tokens)))

    def top_words(self, n: int) -> list[tuple[list[str], list[float]]]:
        return self.model.top_words(self.vocabulary, n)


def bags(tokens: pa.ListArray, vocabulary: Sequence[str]) -> sparse.csr_matrix:
    """Bag-of-words counts of each row over ``vocabulary`` (other words are dropped)."""
    index = pc.index_in(pc.list_flatten(tokens), value_set=pa.array(vocabulary, pa.string()))
    rows = pc.list_parent_indices(tokens).to_numpy()
    known = index.is_valid().to_numpy(zero_copy_only=False)
    columns = index.to_numpy(zero_copy_only=False)[known].astype(np.int64)
    ones = np.ones(len(columns), dtype=np.float32)
    return sparse.csr_matrix((ones, (rows[known], columns)), shape=(len(tokens), len(vocabulary)))


def fit_ctm(vectors: np.ndarray, tokens: pa.ListArray, n_topics: int, seed: int, epochs: int) -> ContextualTopics:
    """CombinedTM fitted on the sample's bags of morphemes and vectors."""
    documents: Counter[str] = Counter()
    for words in tokens.to_pylist():
        documents.update({w for w in words or () if not is_jamo_only(w)})  # a jamo is no topic word here either
    vocabulary = tuple(sorted(w for w, n in documents.most_common(VOCABULARY_SIZE) if n >= MIN_DOCUMENTS))
    if len(vocabulary) < 2:
        raise InputError("`method` ctm found fewer than 2 morphemes shared by sample documents; the corpus is too small")
    settings = CTMSettings(n_topics=n_topics, epochs=epochs, seed=seed)
    epochs = max(epochs, math.ceil(MIN_STEPS / math.ceil(len(vectors) / settings.batch_size)))
    model = CombinedTM.fit(bags(tokens, vocabulary), vectors, replace(settings, epochs=epochs))
    return ContextualTopics(vocabulary, model)

