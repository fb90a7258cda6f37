"""Groups from the pair tasks' forests: joined on the client, cut at a threshold.

Every pair task returns a maximum spanning forest of its clusters' pairs; a row assigned to
two clusters may be joined in both, so the union is deduplicated and reduced to one forest
(at most one edge per row). Cutting it at ``t`` gives the groups at ``t``.
"""

from __future__ import annotations

import numpy as np

from kbatch.dedup.pairs import max_spanning_forest


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


def share_by_threshold(forest, nodes: int, compared: np.ndarray, kept_before: np.ndarray, exact: int, rows: int,
                       thresholds: np.ndarray) -> list[dict]:
    """The share of ``rows`` removed at each of ``thresholds`` (``exact`` exact duplicates are
    removed at every one)."""
    shares = []
    for t in thresholds:
        removed = exact + dropped(components(forest, nodes, float(t)), compared, kept_before)
        shares.append({"threshold": round(float(t), 4), "duplicates": removed, "share": round(removed / rows, 6) if rows else 0.0})
    return shares
