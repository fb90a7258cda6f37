"""Groups from the pair tasks' forests: joined on the client, cut at a threshold.

Every pair task returns a maximum spanning forest of its clusters' pairs; a row assigned to
two clusters may be joined in both, so the union is deduplicated and reduced to one forest
(at most one edge per row). Exact copies add an edge to their first copy that holds at every
threshold. Cutting the graph at ``t`` gives the groups at ``t``.
"""

from __future__ import annotations

import numpy as np

from kbatch.duplicates.pairs import max_spanning_forest

# The cosine of an edge between exact copies: above every threshold.
ALWAYS = 2.0


def join_forests(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One maximum spanning forest of the union of ``parts`` (global row numbers)."""
    u = np.concatenate([np.minimum(p[0], p[1]) for p in parts] or [np.empty(0, np.int64)])
    v = np.concatenate([np.maximum(p[0], p[1]) for p in parts] or [np.empty(0, np.int64)])
    cosine = np.concatenate([p[2] for p in parts] or [np.empty(0, np.float32)])
    order = np.lexsort((-cosine, v, u))  # a pair found in two clusters: the same cosine, kept once
    u, v, cosine = u[order], v[order], cosine[order]
    first = np.ones(len(u), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return max_spanning_forest(u[first], v[first], cosine[first], nodes)


def components(forest: tuple[np.ndarray, np.ndarray, np.ndarray], nodes: int, threshold: float) -> np.ndarray:
    """The component label of every node when rows are joined by the forest's edges of cosine ``≥ threshold``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    u, v, cosine = forest
    keep = cosine >= threshold
    graph = coo_matrix((np.ones(int(keep.sum()), dtype=np.int8), (u[keep], v[keep])), shape=(nodes, nodes))
    return connected_components(graph, directed=False)[1]


def dropped(labels: np.ndarray, nodes: np.ndarray, kept_before: np.ndarray) -> int:
    """How many of ``nodes`` (the rows compared tonight) a grouping ``labels`` removes: each
    group keeps one row, or none of tonight's when a row kept before is in it."""
    tonight = np.bincount(labels[nodes], minlength=len(labels))
    earlier = np.bincount(labels[kept_before], minlength=len(labels)) > 0
    return int((tonight - ((tonight > 0) & ~earlier)).sum())


def with_edges(forest, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``forest`` and edges ``u``–``v`` that join at every threshold (exact copies)."""
    return (np.concatenate([forest[0], u]), np.concatenate([forest[1], v]),
            np.concatenate([forest[2], np.full(len(u), ALWAYS, dtype=np.float32)]))


def share_by_threshold(graph, nodes: int, tonight: np.ndarray, kept_before: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    """The share of ``tonight``'s rows removed at each of ``thresholds``."""
    shares = []
    for t in thresholds:
        removed = dropped(components(graph, nodes, float(t)), tonight, kept_before)
        shares.append({"threshold": round(float(t), 4), "duplicates": removed, "share": round(removed / len(tonight), 6)})
    return shares
