"""Topics from document vectors: fitted on a sample, applied to every document on the workers.

A fitted model is small (a projection and a few dozen centroids), so Dask sends it to
every worker and each partition is assigned where it lies. k-means and HDBSCAN are fitted
on a sample; mini-batch k-means streams over every partition, one after another. The sample
is part of the corpus, so a fitted model is checked on it: a topic that wins no sample
document would be empty in the result, and is raised (k-means, CTM) or dropped (HDBSCAN).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
# The label of a sample point whose topic was dropped (it won no sample document): it does not vote.
ABSTAIN = -2
# HDBSCAN: an outlier joins its nearest topic when their cosine is at least this percentile of
# the cosines of HDBSCAN's clustered sample points to their own centroid (docs/decisions.md).
OUTLIER_PERCENTILE = 1.0
# An empty topic's scores are raised this much past the gap it must close, so that float
# differences between the sample's and a block's matrix products cannot undo the choice.
BIAS_MARGIN = 1e-4


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


def best_topics(scores: np.ndarray, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's topic (int32): the highest of ``scores + bias``; and its unbiased score (float32)."""
    topic = np.argmax(scores if bias is None else scores + bias, axis=1).astype(np.int32)
    return topic, scores[np.arange(len(topic)), topic].astype(np.float32)


def cover_all(scores: np.ndarray) -> np.ndarray:
    """Per-topic additions to ``scores`` (rows x topics) after which every topic is the best of some row.

    k-means' cosine centroids and CTM's most probable topics can leave a topic without a
    document. An empty topic is raised just past the row that loses least by moving to it,
    taken from a topic that keeps another row.
    """
    k = scores.shape[1]
    bias = np.zeros(k, dtype=np.float32)
    rows = np.arange(len(scores))
    for _ in range(2 * k):
        shifted = scores + bias
        topic = np.argmax(shifted, axis=1)
        counts = np.bincount(topic, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if not len(empty):
            break
        gap = np.where(counts[topic] > 1, shifted[rows, topic] - shifted[:, empty[0]], np.inf)
        if not np.isfinite(gap.min()):
            break
        bias[empty[0]] += gap.min() + BIAS_MARGIN
    return bias


@dataclass(frozen=True)
class CentroidTopics:
    """Topics as unit centroids in the projected space: a document joins the most similar one."""

    projection: Projection
    centroids: np.ndarray
    bias: np.ndarray | None = None  # per-topic additions that leave no topic empty (see cover_all)

    @property
    def n_topics(self) -> int:
        return len(self.centroids)

    def scores(self, vectors: np.ndarray, tokens=None) -> np.ndarray:
        return self.projection(vectors) @ self.centroids.T

    def assign(self, vectors: np.ndarray, tokens=None) -> tuple[np.ndarray, np.ndarray]:
        """Topic (int32) and cosine to its centroid (float32) of each row."""
        return best_topics(self.scores(vectors), self.bias)

    def covering(self, sample: np.ndarray, tokens=None) -> CentroidTopics:
        """This model with every topic won by some document of ``sample``."""
        return replace(self, bias=cover_all(self.scores(sample)))


@dataclass(frozen=True)
class NeighbourTopics:
    """HDBSCAN's labels carried to every document by its nearest sample documents; -1 = outlier.

    HDBSCAN cannot label new points itself; a vote of the labelled sample keeps its
    outliers (documents in sparse regions) instead of forcing them into a topic. An outlier
    then joins its nearest topic when their cosine is at least ``reach``: HDBSCAN leaves
    half or more of short Korean texts out, most of them close to a topic.
    """

    projection: Projection
    points: np.ndarray  # the sample, projected
    labels: np.ndarray  # HDBSCAN's label of each sample point (ABSTAIN: no vote)
    centroids: np.ndarray
    reach: float = np.inf  # an outlier joins its nearest topic at this cosine or more

    @property
    def n_topics(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray, tokens=None) -> tuple[np.ndarray, np.ndarray]:
        """Topic (int32, -1 = outlier) and cosine to its topic's centroid, or the nearest one's (float32), of each row."""
        projected = self.projection(vectors)
        topic = self._vote(projected)
        similarity = projected @ self.centroids.T
        rows, nearest = np.arange(len(topic)), np.argmax(similarity, axis=1)
        joins = (topic < 0) & (similarity[rows, nearest] >= self.reach)
        topic = np.where(joins, nearest, topic).astype(np.int32)
        return topic, similarity[rows, np.where(topic < 0, nearest, topic)].astype(np.float32)

    def _vote(self, projected: np.ndarray) -> np.ndarray:
        """The most common label (outlier included, abstentions not) of each row's nearest sample points."""
        topic = np.empty(len(projected), dtype=np.int32)
        k = min(NEIGHBOURS, len(self.points))
        for start in range(0, len(projected), NEIGHBOUR_CHUNK):
            chunk = projected[start : start + NEIGHBOUR_CHUNK]
            nearest = np.argpartition(-(chunk @ self.points.T), k - 1, axis=1)[:, :k]
            votes = np.zeros((len(chunk), self.n_topics + 2), dtype=np.int32)  # outliers, topics, abstentions
            np.add.at(votes, (np.repeat(np.arange(len(chunk)), k), self.labels[nearest].ravel() + 1), 1)
            topic[start : start + len(chunk)] = np.argmax(votes[:, :-1], axis=1) - 1
        return topic

    def keeping(self, topics: np.ndarray) -> NeighbourTopics:
        """This model with only ``topics`` (renumbered 0, 1, ...); sample points of the others abstain.

        Abstaining, not voting outlier: a document that a kept topic won keeps winning it.
        """
        new = np.full(self.n_topics + 2, ABSTAIN, dtype=np.int32)  # indexed by label + 1: ABSTAIN reads the last
        new[0], new[topics + 1] = -1, np.arange(len(topics))
        return replace(self, labels=new[self.labels + 1], centroids=self.centroids[topics])


def _neighbour_model(projection: Projection, points: np.ndarray, labels: np.ndarray, percentile: float | None,
                    seed: int) -> NeighbourTopics:
    """The voting model of HDBSCAN's ``labels``; outliers join a topic at the ``percentile`` (None: never)
    of the cosines of clustered points to their own centroid."""
    centroids = unit_rows(np.stack([points[labels == t].mean(axis=0) for t in range(int(labels.max()) + 1)]))
    clustered = labels >= 0
    own = np.sum(points[clustered] * centroids[labels[clustered]], axis=1)
    reach = np.inf if percentile is None else float(np.percentile(own, percentile))
    voters = np.random.default_rng(seed).permutation(len(points))[:MAX_VOTERS]
    return NeighbourTopics(projection, points[voters], labels[voters], centroids, reach)


def choose_k(points: np.ndarray, seed: int) -> tuple[int, str]:
    """The k in a range of candidates with the best cosine silhouette on a subsample, and how it was chosen."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    subset = points[rng.choice(len(points), min(len(points), SILHOUETTE_ROWS), replace=False)]
    largest = min(MAX_AUTO_TOPICS, len(subset) // 10)
    if largest < MIN_AUTO_TOPICS:
        raise InputError(f"`n_topics` auto needs at least {MIN_AUTO_TOPICS * 10} documents with text; give `n_topics`")
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
    return CentroidTopics(projection, unit_rows(kmeans.cluster_centers_.astype(np.float32))).covering(sample), how


def fit_hdbscan(sample: np.ndarray, n_topics: int | None, dims: int | None, min_cluster_size: int | None, seed: int,
                percentile: float | None = OUTLIER_PERCENTILE) -> tuple[NeighbourTopics | CentroidTopics, str]:
    """HDBSCAN on the sample finds the number of topics (and outliers) itself; with ``n_topics``,
    the closest of its clusters are then merged (average cosine linkage of centroids) down to it,
    or, when it finds fewer, k-means on the sample makes ``n_topics``. Outliers join their nearest
    topic at the ``percentile`` of clustered points' cosines (None: they stay outliers)."""
    from sklearn.cluster import HDBSCAN

    projection = Projection.fit(sample, dims, seed)
    points = projection(sample)
    size = min_cluster_size or max(10, len(points) // 1000)
    if len(points) <= size:
        raise InputError(f"HDBSCAN needs more than {size} documents with text, the sample has {len(points):,}; "
                         "try `method` kmeans `n_topics` N")
    labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(points).astype(np.int32)
    found = int(labels.max()) + 1
    if found < 2:
        raise InputError(f"HDBSCAN found {found} cluster(s) in {len(points):,} sample rows; try `method` kmeans or a larger `fit_sample`")
    how = (f"HDBSCAN (min_cluster_size={size}) found {found} clusters in {len(points):,} sample rows, "
           f"{np.mean(labels < 0):.0%} of them outliers")
    if n_topics is not None and found > n_topics:
        labels = _merge_clusters(points, labels, n_topics)
        how += f", merged into {n_topics}"
    model = _neighbour_model(projection, points, labels, percentile, seed)
    topic, _ = model.assign(sample)
    won = np.unique(topic[topic >= 0])
    if len(won) < model.n_topics:
        how += f"; {len(won)} of its {model.n_topics} topics won sample documents, the others were dropped"
        model = model.keeping(won)
        topic, _ = model.assign(sample)
    if n_topics is not None and model.n_topics < n_topics:
        fallback, _ = fit_kmeans(sample, n_topics, dims, seed)
        return fallback, how + f"; fewer than {n_topics}, so k-means on the sample made {n_topics} topics (no outliers)"
    if percentile is not None:
        how += (f"; an outlier joins its nearest topic at cosine {model.reach:.3f} or more (percentile {percentile:g} of "
                f"clustered sample rows' cosines to their centroid), which leaves {np.mean(topic < 0):.0%} of the sample outliers")
    return model, how


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


def finish_minibatch(state: tuple, sample: np.ndarray) -> CentroidTopics:
    """The streamed centroids, with every topic won by some ``sample`` document."""
    projection, kmeans = state
    return CentroidTopics(projection, unit_rows(kmeans.cluster_centers_.astype(np.float32))).covering(sample)


def _check_k(k: int, rows: int) -> None:
    if k < 2:
        raise InputError(f"`n_topics` must be at least 2, got {k}")
    if k > rows:
        raise InputError(f"`n_topics` {k} is more than the {rows:,} sampled documents with text")
