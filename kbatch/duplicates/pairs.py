"""Pairs within a cluster, compared tile by tile, kept as a maximum spanning forest.

A cluster's full ``m × m`` cosine matrix is never built: tiles of ``TILE × TILE`` rows are
multiplied one after another and the pairs at or above ``floor`` are folded into a running
maximum spanning forest (at most ``m - 1`` edges). The forest holds every answer a threshold
``t ≥ floor`` can ask: two rows are in one group at ``t`` exactly when the forest joins them
by edges of cosine ``≥ t`` (Kruskal), so one pass gives the groups at the chosen threshold
and the duplicate share at every other.
"""

from __future__ import annotations

import numpy as np

# Rows per tile side: a 2,048 × 2,048 tile is 16 MiB of scores, and at most 4 M pairs to fold.
TILE = 2048


def max_spanning_forest(u: np.ndarray, v: np.ndarray, cosine: np.ndarray, nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges of a maximum spanning forest of the graph on ``nodes`` nodes (``u``, ``v``
    distinct pairs, each given once)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    if len(u) == 0:
        return u, v, cosine
    weight = 2.0 - cosine.astype(np.float64)  # > 0: scipy reads a zero weight as no edge
    tree = minimum_spanning_tree(coo_matrix((weight, (u, v)), shape=(nodes, nodes)).tocsr()).tocoo()
    return tree.row.astype(np.int64), tree.col.astype(np.int64), (2.0 - tree.data).astype(np.float32)


def cluster_forest(vectors: np.ndarray, floor: float, tile: int = TILE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum spanning forest of the pairs of ``vectors`` (unit rows) with cosine ``≥ floor``, as
    local row numbers."""
    import torch

    m = len(vectors)
    matrix = torch.from_numpy(np.ascontiguousarray(vectors))
    u, v, cosine = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    for a in range(0, m, tile):
        left = matrix[a : a + tile]
        for b in range(a, m, tile):
            scores = left @ matrix[b : b + tile].T
            if a == b:
                scores = torch.triu(scores, diagonal=1) - torch.tril(torch.full_like(scores, 2.0))  # each pair once
            i, j = torch.nonzero(scores >= floor, as_tuple=True)
            if len(i):
                found = scores[i, j].numpy()
                u, v, cosine = max_spanning_forest(np.concatenate([u, i.numpy() + a]), np.concatenate([v, j.numpy() + b]),
                                                   np.concatenate([cosine, found]), m)
    return u, v, cosine
