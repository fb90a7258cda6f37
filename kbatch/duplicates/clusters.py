"""k-means centroids fitted on a sample, and each vector's nearest centroids.

Only rows of one cluster are ever compared, so a duplicate pair split by a cluster border is
missed. Each row therefore goes to its ``assignments`` nearest centroids (soft assignment):
a pair is compared when their sets of centroids meet. ``bench/dedup.py`` measures the recall
this keeps against an exact all-pairs search.
"""

from __future__ import annotations

import math

import numpy as np

# Sample rows per centroid the k-means is fitted on (faiss warns under 39).
SAMPLE_PER_CLUSTER = 64
MIN_SAMPLE = 20_000
# Default clusters: about sqrt(rows), so a cluster holds about as many rows as there are
# clusters, and the pair work (clusters × size²) grows as rows^1.5, not rows².


def default_clusters(rows: int) -> int:
    """The number of clusters for ``rows`` rows when none is given."""
    return max(1, round(math.sqrt(rows)))


def sample_size(clusters: int, rows: int) -> int:
    return min(rows, max(MIN_SAMPLE, SAMPLE_PER_CLUSTER * clusters))


def fit_centroids(sample: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """``clusters`` unit centroids of spherical k-means on ``sample`` (fewer when the sample is smaller)."""
    import faiss

    k = max(1, min(clusters, len(sample)))
    if k == 1:
        centroid = sample.mean(axis=0, keepdims=True)
        return (centroid / max(float(np.linalg.norm(centroid)), 1e-12)).astype(np.float32)
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=20, spherical=True, seed=seed, verbose=False,
                          max_points_per_centroid=SAMPLE_PER_CLUSTER * 4, min_points_per_centroid=1)
    kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
    return kmeans.centroids.astype(np.float32)


def nearest(vectors: np.ndarray, centroids: np.ndarray, assignments: int) -> np.ndarray:
    """The ``assignments`` nearest centroids of each row (rows × assignments, best first)."""
    import torch

    a = min(assignments, len(centroids))
    scores = torch.from_numpy(vectors) @ torch.from_numpy(centroids).T
    return torch.topk(scores, a, dim=1).indices.numpy().astype(np.int32)
