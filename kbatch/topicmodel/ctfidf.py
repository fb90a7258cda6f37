"""Topic words by class-based TF-IDF (BERTopic's c-TF-IDF), from summed morpheme counts.

Each topic is one long document made of its documents' morphemes; a word scores high
when frequent in the topic and rare across topics:
``W(t, c) = sqrt(tf(t, c) / |c|) * log(1 + A / f(t))``, with ``A`` the mean number of
words per topic and ``f(t)`` the frequency of ``t`` in all topics. The square root is
BERTopic's ``reduce_frequent_words``: without it, words every Korean review uses (영화,
진짜, 최고) lead most topics (docs/decisions.md has the measurements).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse


def class_tfidf(terms: pa.Table, top_n: int) -> dict[int, tuple[list[str], list[float]]]:
    """The ``top_n`` words of each topic with their c-TF-IDF weights, best first."""
    if terms.num_rows == 0:
        return {}
    topics, topic_index = np.unique(terms.column("topic").to_numpy(), return_inverse=True)
    vocabulary = pc.unique(terms.column("term"))
    term_index = pc.index_in(terms.column("term"), value_set=vocabulary).to_numpy()
    counts = terms.column("count").to_numpy().astype(np.float64)
    matrix = sparse.csr_matrix((counts, (topic_index, term_index)), shape=(len(topics), len(vocabulary)))
    per_topic = np.asarray(matrix.sum(axis=1)).ravel()
    frequency = np.asarray(matrix.sum(axis=0)).ravel()
    idf = np.log(1 + per_topic.mean() / frequency)
    share = (sparse.diags(1 / np.maximum(per_topic, 1)) @ matrix).tocsr()
    share.data = np.sqrt(share.data)
    weights = (share @ sparse.diags(idf)).tocsr()
    words = np.asarray(vocabulary.to_pylist(), dtype=object)
    best = {}
    for row, topic in enumerate(topics):
        start, stop = weights.indptr[row], weights.indptr[row + 1]
        values, columns = weights.data[start:stop], weights.indices[start:stop]
        order = np.lexsort((words[columns], -values))[:top_n]  # ties by word, whatever order partitions came in
        best[int(topic)] = (words[columns[order]].tolist(), [float(v) for v in values[order]])
    return best
