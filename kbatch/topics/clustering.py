"""Topics from document vectors: fitted on a sample, applied to every document on the workers.

A fitted model is small (a projection and a few dozen centroids), so Dask sends it to
every worker and each partition is assigned where it lies. k-means and HDBSCAN are fitted
on a sample; mini-batch k-means streams over every partition, one after another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbatch.errors import InputError

# --n-topics auto with k-means: the silhouette of these many sample rows decides k.
SILHOUETTE_ROWS = 5_000
MIN_AUTO_TOPICS = 3
MAX_AUTO_TOPICS = 50
# HDBSCAN: a document takes the most common label (outlier included) of this many nearest
# sample documents, as the sample's own points were labelled.
# At most this many labelled sample documents vote, compared with 1,024 documents at a time:
# a 1,024 x 10,000 similarity block is 40 MiB.
NEIGHBOURS = 10
MAX_VOTERS = 10_000
NEIGHBOUR_CHUNK = 1024


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


@dataclass(frozen=True)
class Projection:
    """Optional PCA to fewer dimensions, then unit length (k-means on unit vectors is cosine k-means)."""

    mean: np.ndarray | None = None
    components: np.ndarray | None = None

    @classmethod
    def fit(cls, sample: np.ndarray, dims: int | None, seed: int) -> Projection:
        if not dims or dims >= sample.shape[1]:
            return cls()
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(dims, len(sample)), random_state=seed).fit(sample)
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        if self.components is not None:
            vectors = (vectors - self.mean) @ self.components.T
        return unit_rows(vectors.astype(np.float32, copy=False))


@dataclass(frozen=True)
class CentroidTopics:
    """Topics as unit centroids in the projected space: a document joins the most similar one."""

    projection: Projection
    centroids: np.ndarray

    @property
    def n_topics(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray, tokens=None) -> tuple[np.ndarray, np.ndarray]:
        """Topic (int32) and cosine to its centroid (float32) of each row."""
        similarity = self.projection(vectors) @ self.centroids.T
        topic = np.argmax(similarity, axis=1).astype(np.int32)
        return topic, similarity[np.arange(len(topic)), topic].astype(np.float32)


@dataclass(frozen=True)
class NeighbourTopics:
    """HDBSCAN's labels carried to every document by its nearest sample documents; -1 = outlier.

    HDBSCAN cannot label new points itself; a vote of the labelled sample keeps its
    outliers (documents in sparse regions) instead of forcing them into a topic.
    """

    projection: Projection
    points: np.ndarray  # the sample, projected
    labels: np.ndarray  # HDBSCAN's label of each sample point
    centroids: np.ndarray

    @property
    def n_topics(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray, tokens=None) -> tuple[np.ndarray, np.ndarray]:
        """Topic (int32, -1 = outlier) and cosine to the nearest topic centroid (float32) of each row."""
        projected = self.projection(vectors)
        topic = np.empty(len(projected), dtype=np.int32)
        k = min(NEIGHBOURS, len(self.points))
        for start in range(0, len(projected), NEIGHBOUR_CHUNK):
            chunk = projected[start : start + NEIGHBOUR_CHUNK]
            nearest = np.argpartition(-(chunk @ self.points.T), k - 1, axis=1)[:, :k]
            votes = np.zeros((len(chunk), self.n_topics + 1), dtype=np.int32)
            np.add.at(votes, (np.repeat(np.arange(len(chunk)), k), self.labels[nearest].ravel() + 1), 1)
            topic[start : start + len(chunk)] = np.argmax(votes, axis=1) - 1
        score = np.max(projected @ self.centroids.T, axis=1).astype(np.float32)
        return topic, score


def choose_k(points: np.ndarray, seed: int) -> tuple[int, str]:
    """The k in a range of candidates with the best cosine silhouette on a subsample, and how it was chosen."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    subset = points[rng.choice(len(points), min(len(points), SILHOUETTE_ROWS), replace=False)]
    largest = min(MAX_AUTO_TOPICS, len(subset) // 10)
    if largest < MIN_AUTO_TOPICS:
        raise InputError(f"--n-topics auto needs at least {MIN_AUTO_TOPICS * 10} documents with text; give --n-topics")
    candidates = sorted({round(k) for k in np.geomspace(MIN_AUTO_TOPICS, largest, 8)})
    scores = {}
    for k in candidates:
        labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(subset)
        scores[k] = float(silhouette_score(subset, labels, metric="cosine"))
    best = max(scores, key=scores.get)
    tried = ", ".join(f"{k}: {s:.3f}" for k, s in scores.items())
    return best, f"k={best} had the best cosine silhouette on {len(subset):,} sample rows (k: silhouette = {tried})"


def fit_kmeans(sample: np.ndarray, n_topics: int | None, dims: int | None, seed: int) -> tuple[CentroidTopics, str]:
    """k-means on the sample; ``n_topics=None`` chooses k (see :func:`choose_k`)."""
    from sklearn.cluster import KMeans

    projection = Projection.fit(sample, dims, seed)
    points = projection(sample)
    k, how = choose_k(points, seed) if n_topics is None else (n_topics, f"k={n_topics} as given")
    _check_k(k, len(points))
    kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(points)
    return CentroidTopics(projection, unit_rows(kmeans.cluster_centers_.astype(np.float32))), how


def fit_hdbscan(
    sample: np.ndarray, n_topics: int | None, dims: int | None, min_cluster_size: int | None, seed: int
) -> tuple[NeighbourTopics, str]:
    """HDBSCAN on the sample finds the number of topics (and outliers) itself; with ``n_topics``,
    the closest of its clusters are then merged (average cosine linkage of centroids) down to it."""
    from sklearn.cluster import HDBSCAN

    projection = Projection.fit(sample, dims, seed)
    points = projection(sample)
    size = min_cluster_size or max(10, len(points) // 1000)
    if len(points) <= size:
        raise InputError(f"HDBSCAN needs more than {size} documents with text, the sample has {len(points):,}; "
                         "try --method kmeans --n-topics N")
    labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(points).astype(np.int32)
    found = int(labels.max()) + 1
    if found < 2:
        raise InputError(f"HDBSCAN found {found} cluster(s) in {len(points):,} sample rows; try --method kmeans or a larger --fit-sample")
    how = f"HDBSCAN (min_cluster_size={size}) found {found} clusters in {len(points):,} sample rows ({np.mean(labels < 0):.0%} outliers)"
    if n_topics is not None and found > n_topics:
        labels = _merge_clusters(points, labels, n_topics)
        how += f", merged into {n_topics}"
    centroids = unit_rows(np.stack([points[labels == t].mean(axis=0) for t in range(int(labels.max()) + 1)]))
    voters = np.random.default_rng(seed).permutation(len(points))[:MAX_VOTERS]
    return NeighbourTopics(projection, points[voters], labels[voters], centroids), how


def _merge_clusters(points: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """Labels with the clusters joined into ``n_topics`` groups by their centroids' cosine (outliers stay -1)."""
    from sklearn.cluster import AgglomerativeClustering

    centroids = unit_rows(np.stack([points[labels == t].mean(axis=0) for t in range(int(labels.max()) + 1)]))
    groups = AgglomerativeClustering(n_clusters=n_topics, metric="cosine", linkage="average").fit_predict(centroids)
    return np.where(labels >= 0, groups[np.maximum(labels, 0)], -1).astype(np.int32)


def start_minibatch(sample: np.ndarray, n_topics: int | None, dims: int | None, seed: int) -> tuple[tuple, str]:
    """Projection and a mini-batch k-means initialized on the sample; every block then updates it in turn."""
    from sklearn.cluster import MiniBatchKMeans

    projection = Projection.fit(sample, dims, seed)
    points = projection(sample)
    k, how = choose_k(points, seed) if n_topics is None else (n_topics, f"k={n_topics} as given")
    _check_k(k, len(points))
    kmeans = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).partial_fit(points)
    return (projection, kmeans), f"{how}; mini-batch k-means then updated by every block"


def update_minibatch(state: tuple, vectors: np.ndarray) -> tuple:
    """One block's mini-batches folded into the model."""
    projection, kmeans = state
    points = projection(vectors)
    for start in range(0, len(points), kmeans.batch_size):
        kmeans.partial_fit(points[start : start + kmeans.batch_size])
    return projection, kmeans


def finish_minibatch(state: tuple) -> CentroidTopics:
    projection, kmeans = state
    return CentroidTopics(projection, unit_rows(kmeans.cluster_centers_.astype(np.float32)))


def _check_k(k: int, rows: int) -> None:
    if k < 2:
        raise InputError(f"--n-topics must be at least 2, got {k}")
    if k > rows:
        raise InputError(f"--n-topics {k} is more than the {rows:,} sampled documents with text")
