"""An approximate index for right sides too large for exact top-k: faiss HNSW, inner product.

Why faiss (``faiss-cpu``): maintained, wheels for Linux and macOS, an HNSW index that
searches by inner product (cosine on kbatch's normalized vectors), indexes that save to
one file so the index is built once and every worker loads it, and the same library
offers IVF-PQ and GPU indexes when a catalog outgrows HNSW. hnswlib has had no release
since 2023; usearch is fast but its recall/speed knobs are less established.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from kbatch.caches import worker_cache
from kbatch.errors import KbatchError
from kbatch.io import storage
from kbatch.io.storage import atomic_path

# Graph degree and build/search breadth; recall@10 against exact search is measured by
# bench/match.py on real vectors.
HNSW_M = 32
EF_CONSTRUCTION = 200
EF_SEARCH = 256


def _faiss():
    try:
        import faiss
    except ImportError:
        raise KbatchError("`index` ann needs faiss: pip install faiss-cpu (or: pip install 'kbatch[ann]')") from None
    return faiss


def build_index(right_dir: str, target: str, threads: int | None) -> str:
    """Build the HNSW index of a right side's vectors on a worker and save it beside the output."""
    from kbatch.vectors.columns import read_vectors, vector_matrix

    faiss = _faiss()
    faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
    matrix, valid = vector_matrix(read_vectors(right_dir, ["embedding"]).column("embedding").combine_chunks())
    rows = np.flatnonzero(valid)
    index = faiss.IndexHNSWFlat(matrix.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(np.ascontiguousarray(matrix[rows]))
    storage.make_dirs(storage.parent_of(target))
    with storage.atomic_write(_rows_file(target)) as handle:
        np.save(handle, rows)
    if storage.is_url(target):  # faiss writes files by path: the index goes up as one upload
        with storage.atomic_write(target) as handle:
            handle.write(faiss.serialize_index(index).tobytes())
    else:
        with atomic_path(Path(target)) as tmp:
            faiss.write_index(index, str(tmp))
    return target


@worker_cache(1)
def load_index(path: str):
    """The saved index and the right rows it holds, once per worker."""
    faiss = _faiss()
    if storage.is_url(path):
        index = faiss.deserialize_index(np.frombuffer(storage.read_bytes(path), dtype=np.uint8))
    else:
        index = faiss.read_index(path)
    return index, np.load(io.BytesIO(storage.read_bytes(_rows_file(path))))


def _rows_file(index_file: str) -> str:
    """Where the right rows of an index file are kept, beside it."""
    return index_file.removesuffix(".faiss") + ".rows.npy"


def search(path: str, left: np.ndarray, k: int, self_offset: int | None, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top ``k`` (scores, right rows) per left row, best first; -inf / -1 where fewer."""
    if threads:
        _faiss().omp_set_num_threads(threads)
    index, rows = load_index(path)
    extra = 1 if self_offset is not None else 0
    index.hnsw.efSearch = max(EF_SEARCH, 2 * (k + extra))
    scores, found = index.search(np.ascontiguousarray(left, dtype=np.float32), k + extra)
    where = np.where(found >= 0, rows[np.maximum(found, 0)], -1)
    scores = np.where(found >= 0, scores, -np.inf).astype(np.float32)
    if self_offset is not None:
        own = where == (np.arange(len(left)) + self_offset)[:, None]
        scores[own], where[own] = -np.inf, -1
        order = np.argsort(-scores, axis=1, kind="stable")
        scores, where = np.take_along_axis(scores, order, axis=1), np.take_along_axis(where, order, axis=1)
    return scores[:, :k], where[:, :k]
