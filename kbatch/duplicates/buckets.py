"""Vector blocks, and the bucket files that regroup their rows by cluster.

A :class:`Block` is a partition of an ``embed`` output, or the kept rows of one (an earlier
night's kept set). Its task writes two files: the vectors of its rows sorted by cluster (a
row once per cluster it is assigned to) as raw float32, and the global row numbers with the
offsets of each cluster. A pair task then reads clusters ``c0 … c1`` as one contiguous byte
range of every block's file: no worker ever holds more than one block's or one task's rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from kbatch.io import storage
from kbatch.io.reader import Piece, read_piece_table
from kbatch.vectors.columns import vector_matrix

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Block:
    """Rows of one vectors partition: all of them (``take=None``) or those at positions
    ``take``; the first is global row ``first`` and the others follow in order."""

    index: int
    piece: Piece
    first: int
    take: tuple[int, ...] | None = None

    @property
    def rows(self) -> int:
        return self.piece.rows if self.take is None else len(self.take)


def read_block(block: Block) -> tuple[np.ndarray, np.ndarray]:
    """Global row numbers and unit vectors of the block's rows that have a vector."""
    vectors, has_vector = vector_matrix(read_piece_table(block.piece, ["embedding"]).column("embedding").combine_chunks())
    if block.take is not None:
        positions = np.asarray(block.take, dtype=np.int64)
        vectors, has_vector = vectors[positions], has_vector[positions]
    rows = block.first + np.flatnonzero(has_vector)
    vectors = vectors[has_vector]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return rows, vectors


def write_bucket(directory: str, index: int, rows: np.ndarray, vectors: np.ndarray, clusters: np.ndarray, n_clusters: int) -> np.ndarray:
    """Write rows ``rows`` (their vectors, and the clusters of each, rows × assignments) sorted by
    cluster; return the number of rows per cluster."""
    flat_clusters = clusters.ravel()
    source = np.repeat(np.arange(len(rows)), clusters.shape[1])
    order = np.argsort(flat_clusters, kind="stable")
    counts = np.bincount(flat_clusters, minlength=n_clusters).astype(np.int64)
    with storage.atomic_write(storage.join(directory, f"block-{index:05d}.f32")) as handle:
        handle.write(np.ascontiguousarray(vectors[source[order]], dtype=np.float32).tobytes())
    buffer = io.BytesIO()
    np.savez(buffer, rows=rows[source[order]], offsets=np.concatenate([[0], np.cumsum(counts)]))
    with storage.atomic_write(storage.join(directory, f"block-{index:05d}.npz")) as handle:
        handle.write(buffer.getvalue())
    return counts


def read_clusters(directory: str, blocks: int, first: int, stop: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and vectors of clusters ``first … stop-1`` from every block's bucket, grouped by
    cluster, and the offsets of each cluster in them (cluster ``first + i`` is ``offsets[i]:offsets[i+1]``)."""
    rows, vectors, labels = [], [], []
    for index in range(blocks):
        with np.load(io.BytesIO(storage.read_bytes(storage.join(directory, f"block-{index:05d}.npz")))) as meta:
            offsets, block_rows = meta["offsets"], meta["rows"]
        lo, hi = int(offsets[first]), int(offsets[stop])
        rows.append(block_rows[lo:hi])
        vectors.append(_read_range(storage.join(directory, f"block-{index:05d}.f32"), lo, hi, dim))
        labels.append(np.repeat(np.arange(stop - first), np.diff(offsets[first : stop + 1])))
    label = np.concatenate(labels)
    order = np.argsort(label, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=stop - first))])
    return np.concatenate(rows)[order], np.concatenate(vectors)[order], offsets


def _read_range(path: str, lo: int, hi: int, dim: int) -> np.ndarray:
    fs, inner = storage.filesystem(path)
    with fs.open(inner, "rb") as handle:
        handle.seek(lo * dim * FLOAT_BYTES)
        data = handle.read((hi - lo) * dim * FLOAT_BYTES)
    return np.frombuffer(data, dtype=np.float32).reshape(hi - lo, dim)
