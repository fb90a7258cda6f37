"""The encode stage: token ids in, one fixed-size vector per row out.

Skipped rows (null or empty text) keep their place with a null embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.models.batching import encode_ragged
from kbatch.models.encoders import EncoderSettings, load_encoder
from kbatch.stages.base import Stage

DTYPES = {"float32": (np.float32, pa.float32()), "float16": (np.float16, pa.float16())}


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


@dataclass(frozen=True)
class Encode(Stage):
    """Adds ``embedding`` (fixed_size_list<float32|float16>[dim]) and drops ``input_ids``."""

    settings: EncoderSettings
    token_budget: int | None = None  # None: the encoder's own (measured on CPU, sized from free GPU memory)
    max_rows: int | None = None
    normalize: bool = True
    dtype: str = "float32"

    needs = ("input_ids", "skip_reason")
    adds = ("embedding",)
    resource = "GPU"

    def describe(self) -> dict:
        """The vector size and pooling of the loaded model, for output metadata."""
        encoder = load_encoder(self.settings)
        return {"dimension": encoder.dimension, "pooling": encoder.pooling}

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's vectors of ``frame``'s rows, not normalized; zeros for skipped rows."""
        encoder = load_encoder(self.settings)
        budget, rows = encoder.batch_limits()
        keep = frame["skip_reason"].isna().to_numpy()
        ids = pa.array(frame["input_ids"]).filter(pa.array(keep))
        vectors = np.zeros((len(frame), encoder.dimension), dtype=np.float32)
        if keep.any():
            vectors[keep] = encode_ragged(
                encoder,
                np.asarray(ids.values),
                np.asarray(ids.offsets),
                encoder.dimension,
                token_budget=self.token_budget or budget,
                max_rows=self.max_rows or rows,
                pad_id=encoder.pad_id,
            )
        return vectors

    def column(self, vectors: np.ndarray, keep: np.ndarray, index: pd.Index) -> pd.Series:
        """``vectors`` as the ``embedding`` column: normalized if asked, in the output dtype, null where not ``keep``."""
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        numpy_type, arrow_type = DTYPES[self.dtype]
        values = pa.array(vectors.astype(numpy_type, copy=False).ravel(), type=arrow_type)
        embedding = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1], mask=pa.array(~keep))
        return pd.Series(pd.arrays.ArrowExtensionArray(embedding), index=index)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.with_vectors(frame, self.raw(frame))

    def with_vectors(self, frame: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
        """``frame`` with raw ``vectors`` as its ``embedding`` column, ``input_ids`` dropped."""
        out = frame.drop(columns=["input_ids"])
        out["embedding"] = self.column(vectors, frame["skip_reason"].isna().to_numpy(), frame.index)
        return out
