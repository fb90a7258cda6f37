"""The dedup passes, submitted to one cluster: hash, sample and fit, bucket, pair, represent.

Every pass over rows runs on CPU workers, one partition (or one range of clusters) per task;
the client receives hashes and ids, the forests' edges (at most one per row) and per-row
cosines of grouped rows, never a matrix of vectors.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from kbatch.duplicates import buckets, clusters, exact, output, pairs, representatives
from kbatch.duplicates.buckets import Block
from kbatch.duplicates.representatives import Members
from kbatch.engine.run import follow, tree_reduce
from kbatch.io import storage
from kbatch.io.reader import Piece
from kbatch.models.resolve import ModelSpec

# Rows (with their soft copies) one pair task reads: 50,000 × 512 floats is 100 MiB, held
# about three times while regrouped, and the tiles add 16 MiB.
TASK_ROWS = 50_000


@dataclass(frozen=True)
class Semantic:
    """How the semantic pass runs: clusters, soft assignments per row, the lowest cosine kept
    (the plot's floor), the seed of sampling and k-means."""

    clusters: int
    assignments: int
    floor: float
    seed: int


class DedupSteps:
    """The dedup passes, submitted to one cluster."""

    def __init__(self, cluster, progress: bool, seconds: dict[str, float]) -> None:
        self.client, self.cpu, self.progress, self.seconds = cluster.client, cluster.routing.cpu, progress, seconds

    def hashes(self, pieces: list[Piece], text_col: str, id_col: str | None, model: ModelSpec | None) -> exact.Hashed:
        """Every source row's id, hash pair, length, skip reason and whether ``model`` sees it, in row order."""
        start = time.perf_counter()
        futures = [self.client.submit(exact.hash_piece, p, text_col, id_col, model, resources=self.cpu, pure=False)
                   for p in pieces]
        follow(self.client, futures, [p.rows for p in pieces], "rows", self.progress, desc="exact pass")
        hashed = exact.join_hashed(*self.client.gather(futures))
        self.seconds["exact"] = time.perf_counter() - start
        return hashed

    def forest(self, blocks: list[Block], skip: np.ndarray, settings: Semantic, scratch: str, nodes: int, dim: int):
        """The maximum spanning forest of all pairs within clusters with cosine ``≥ settings.floor``;
        rows ``skip`` (sorted global rows) take no part."""
        start = time.perf_counter()
        skipped = self.client.scatter(skip, broadcast=True)
        compared = sum(b.rows for b in blocks) - len(skip)
        fraction = min(1.0, clusters.sample_size(settings.clusters, compared) / max(compared, 1))
        samples = [self.client.submit(_sample, b, skipped, fraction, settings.seed, resources=self.cpu) for b in blocks]
        sample = tree_reduce(self.client, samples, _stack, self.cpu)
        centroids = self.client.submit(clusters.fit_centroids, sample, settings.clusters, settings.seed, resources=self.cpu)
        k = self.client.submit(len, centroids, resources=self.cpu).result()
        self.seconds["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        storage.empty_directory(scratch)
        futures = [self.client.submit(_bucket, b, centroids, skipped, settings.assignments, scratch, k, resources=self.cpu,
                                      pure=False) for b in blocks]
        follow(self.client, futures, [b.rows for b in blocks], "rows", self.progress, desc="assign")
        sizes = sum(self.client.gather(futures))
        self.seconds["assign"] = time.perf_counter() - start
        start = time.perf_counter()
        ranges = cluster_ranges(sizes, min(TASK_ROWS, max(1_000, math.ceil(sizes.sum() / (4 * self._workers())))))
        futures = [self.client.submit(_range_forest, scratch, len(blocks), lo, hi, dim, settings.floor, resources=self.cpu,
                                      pure=False) for lo, hi in ranges]
        follow(self.client, futures, [int(sizes[lo:hi].sum()) for lo, hi in ranges], "rows", self.progress, desc="pairs")
        from kbatch.duplicates.forest import join_forests

        forest = join_forests(self.client.gather(futures), nodes)
        storage.remove(scratch, recursive=True)
        self.seconds["pairs"] = time.perf_counter() - start
        return forest, {"clusters": int(k), "largest_cluster": int(sizes.max()) if len(sizes) else 0, "pair_tasks": len(ranges)}

    def represent(self, blocks: list[Block], members: Members, score: np.ndarray | None, before: int) -> tuple[np.ndarray, np.ndarray]:
        """The representative of each group (by ``score`` per member; ``None``: the member closest to
        the group's centroid) and every member's cosine to it."""
        start = time.perf_counter()
        shared = self.client.scatter(members, broadcast=True)
        if score is None:
            score = self._cosines(blocks, shared, self._group_vectors(blocks, shared, members.n_groups), members, fill=-1.0)
        representative = representatives.choose(members, score, before)
        kept = representative[representative >= 0]
        order = np.argsort(kept)
        reps = self.client.scatter(Members(kept[order], np.flatnonzero(representative >= 0)[order], members.n_groups), broadcast=True)
        cosine = self._cosines(blocks, shared, self._group_vectors(blocks, reps, members.n_groups), members, fill=1.0)
        self.seconds["represent"] = time.perf_counter() - start
        return representative, cosine

    def write_kept(self, pieces: list[Piece], dropped: np.ndarray, directory: str, text_col: str, id_col: str | None,
                   columns: tuple[str, ...] | None) -> None:
        """``directory``: one part per source partition with the rows not ``dropped`` (sorted input rows)."""
        start = time.perf_counter()
        storage.empty_directory(directory)
        shared = self.client.scatter(dropped, broadcast=True)
        futures = [self.client.submit(output.write_kept_part, p, shared, directory, text_col, id_col, columns, resources=self.cpu,
                                      pure=False) for p in pieces]
        follow(self.client, futures, [p.rows for p in pieces], "rows", self.progress, desc="write kept")
        self.seconds["write"] = time.perf_counter() - start

    def _group_vectors(self, blocks: list[Block], members, n_groups: int):
        """A future of the unit sums of ``members``' vectors per group, summed in a tree on the workers."""
        sums = [self.client.submit(representatives.group_sums, b, members, resources=self.cpu) for b in blocks]
        summed = tree_reduce(self.client, sums, representatives.add_sums, self.cpu)
        return self.client.submit(representatives.unit_group_vectors, summed, n_groups, resources=self.cpu)

    def _cosines(self, blocks: list[Block], shared, group_vectors, members: Members, fill: float) -> np.ndarray:
        """Each member's cosine to its group's vector, aligned with ``members.rows`` (``fill`` for a
        member without a vector)."""
        futures = [self.client.submit(representatives.group_cosines, b, shared, group_vectors, resources=self.cpu) for b in blocks]
        found = self.client.gather(futures)
        cosine = np.full(len(members.rows), fill, dtype=np.float32)
        for rows, values in found:
            cosine[np.searchsorted(members.rows, rows)] = values
        return cosine

    def _workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))


def cluster_ranges(sizes: np.ndarray, target: int) -> list[tuple[int, int]]:
    """Consecutive clusters packed into ranges of about ``target`` rows (a larger cluster alone)."""
    ranges, first, rows = [], 0, 0
    for c, size in enumerate(sizes):
        if rows and rows + size > target:
            ranges.append((first, c))
            first, rows = c, 0
        rows += int(size)
    if len(sizes):
        ranges.append((first, len(sizes)))
    return [(lo, hi) for lo, hi in ranges if sizes[lo:hi].sum()]


def _not_skipped(rows: np.ndarray, skip: np.ndarray) -> np.ndarray:
    return ~np.isin(rows, skip, assume_unique=False) if len(skip) else np.ones(len(rows), dtype=bool)


def _sample(block: Block, skip: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rows, vectors = buckets.read_block(block)
    chosen = _not_skipped(rows, skip) & (np.random.default_rng([seed, block.index]).random(len(rows)) < fraction)
    return vectors[chosen]


def _stack(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def _bucket(block: Block, centroids: np.ndarray, skip: np.ndarray, assignments: int, scratch: str, k: int) -> np.ndarray:
    rows, vectors = buckets.read_block(block)
    keep = _not_skipped(rows, skip)
    rows, vectors = rows[keep], vectors[keep]
    return buckets.write_bucket(scratch, block.index, rows, vectors, clusters.nearest(vectors, centroids, assignments), k)


def _range_forest(scratch: str, blocks: int, first: int, stop: int, dim: int, floor: float):
    """The forests of clusters ``first … stop-1``, in global row numbers (a task)."""
    rows, vectors, offsets = buckets.read_clusters(scratch, blocks, first, stop, dim)
    found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))]
    for lo, hi in itertools.pairwise(offsets):
        if hi - lo > 1:
            u, v, cosine = pairs.cluster_forest(vectors[lo:hi], floor)
            found.append((rows[lo:hi][u], rows[lo:hi][v], cosine))
    return tuple(np.concatenate([f[i] for f in found]) for i in range(3))
