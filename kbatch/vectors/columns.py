"""Embedding columns as matrices: what every step that computes with vectors reads."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from kbatch.io import storage


def vector_matrix(embedding: pa.FixedSizeListArray) -> tuple[np.ndarray, np.ndarray]:
    """An ``embedding`` column as a float32 ``rows × dim`` matrix and a has-vector mask.

    ``FixedSizeListArray.values`` ignores a slice's offset, so the values are cut to this
    array's own rows first; null rows keep whatever their slots hold and are masked. The
    matrix is a writable copy.
    """
    dim = embedding.type.list_size
    values = embedding.values.slice(embedding.offset * dim, len(embedding) * dim)
    matrix = np.array(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(embedding), dim)
    return matrix, ~embedding.is_null().to_numpy(zero_copy_only=False)


def read_vectors(directory: str, columns: Sequence[str] = ("id", "embedding")) -> pa.Table:
    """The ``embed`` output in ``directory`` as one table, rows in input order."""
    return pa.concat_tables([storage.read_table(part, list(columns)) for part in storage.glob(directory, "part-*.parquet")])
