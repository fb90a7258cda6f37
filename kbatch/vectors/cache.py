"""The embedding cache: vectors already computed, keyed by model and normalized-text hash.

A night's catalog is mostly last night's catalog; only texts the cache has not seen are
encoded. The cache is a directory per model (fingerprint, pooling, quantization, precision) of
Parquet files ``hash`` (16-byte BLAKE2b of the normalized text) and ``vector`` (raw
float32, before normalization, so one entry serves any ``--no-normalize``/``--dtype``).
Each embedding partition adds one file, written atomically. A run reads the files that
existed when it started (:class:`EmbeddingCache` is that snapshot), so what a run
writes never depends on which of its own partitions finished first.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.caches import worker_cache
from kbatch.io import storage
from kbatch.io.identity import params_key
from kbatch.vectors.columns import vector_matrix


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """16-byte BLAKE2b digests of ``texts`` (UTF-8) as an object array of ``bytes`` (numpy's
    fixed-width ``S16`` would drop a digest's trailing zero bytes)."""
    digests = np.empty(len(texts), dtype=object)
    digests[:] = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
    return digests


@dataclass(frozen=True)
class EmbeddingCache:
    """One model's cache directory and the files a run may read (picklable, goes to workers)."""

    directory: str
    files: tuple[str, ...]

    @classmethod
    def open(cls, root: str | os.PathLike[str], vectors: dict) -> EmbeddingCache:
        """The cache for vectors made with ``vectors`` (model fingerprint, pooling, quantization,
        precision and, where there is one, the prompt's text)."""
        prompt = {"prompt": vectors["prompt"]} if vectors.get("prompt") else {}
        key = params_key({**{k: vectors.get(k) for k in ("model", "pooling", "quantize", "precision")}, **prompt})
        directory = storage.join(storage.location(root), key)
        storage.make_dirs(directory)
        return cls(directory, tuple(storage.name_of(f) for f in storage.glob(directory, "part-*.parquet")))

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which ``hashes`` are cached (bool mask) and their vectors (rows of the found ones)."""
        index, matrix = _load(self.directory, self.files)
        rows = np.array([index.get(h, -1) for h in hashes.tolist()], dtype=np.int64)
        found = rows >= 0
        return found, matrix[rows[found]]

    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Store new entries as one more file (nothing when there are none)."""
        if not len(hashes):
            return
        table = pa.table({
            "hash": pa.array(hashes.tolist(), pa.binary(16)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(np.float32).ravel()), vectors.shape[1]),
        })
        with storage.atomic_write(storage.join(self.directory, f"part-{uuid.uuid4().hex}.parquet")) as handle:
            pq.write_table(table, handle, compression="zstd")


@worker_cache(2)
def _load(directory: str, files: tuple[str, ...]) -> tuple[dict[bytes, int], np.ndarray]:
    """Hash -> row and the vector matrix of a snapshot, read once per worker."""
    if not files:
        return {}, np.zeros((0, 0), np.float32)
    table = pa.concat_tables([storage.read_table(storage.join(directory, f)) for f in files])
    matrix, _ = vector_matrix(table.column("vector").combine_chunks())
    return {h: i for i, h in enumerate(table.column("hash").to_pylist())}, matrix
