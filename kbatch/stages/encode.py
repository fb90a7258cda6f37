"""The encode stage: token ids in, one fixed-size vector per row out (on GPU workers when
the cluster has them).

Skipped rows (null or empty text) keep their place with a null embedding. With an
embedding cache, rows whose normalized text the cache holds for this model are not
encoded again, and the vectors of the others are added to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.models.batching import encode_ragged
from kbatch.models.encoders import EncoderSettings, load_encoder
from kbatch.stages.base import GPU, Stage, Vectors
from kbatch.vectors.cache import EmbeddingCache, text_hashes

DTYPES = {"float32": (np.float32, pa.float32()), "float16": (np.float16, pa.float16())}
CACHE_HIT = "cache_hit"


@dataclass(frozen=True)
class Encode(Stage):
    """Adds ``embedding`` (fixed_size_list<float32|float16>[dim]) and drops ``input_ids``."""

    settings: EncoderSettings
    token_budget: int | None = None  # None: the encoder's own (measured on CPU, sized from free GPU memory)
    max_rows: int | None = None
    normalize: bool = True
    dtype: str = "float32"
    cache: EmbeddingCache | None = None
    model_name: str | None = None

    needs = ("input_ids", "skip_reason")
    drops = ("input_ids",)
    resource = GPU

    @property
    def outputs(self) -> dict[str, object]:
        return {"embedding": Vectors(self.dtype), **({CACHE_HIT: pa.bool_()} if self.cache is not None else {})}

    def setup(self) -> None:
        load_encoder(self.settings)

    def loads(self) -> str | None:
        return self.model_name or Path(self.settings.model_path).name

    def describe(self) -> dict:
        """The vector size and pooling of the loaded model, for output metadata."""
        encoder = load_encoder(self.settings)
        return {"dimension": encoder.dimension, "pooling": encoder.pooling}

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        if self.cache is None:
            return {}
        hits = int(frame[CACHE_HIT].sum())
        return {"cache_hits": hits, "cache_misses": int(frame["skip_reason"].isna().sum()) - hits}

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
        if self.cache is None:
            return self.with_vectors(frame, self.raw(frame))
        return self._with_cache(frame, self.cache)

    def with_vectors(self, frame: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
        """``frame`` with raw ``vectors`` as its ``embedding`` column, ``input_ids`` dropped."""
        out = frame.drop(columns=["input_ids"])
        out["embedding"] = self.column(vectors, frame["skip_reason"].isna().to_numpy(), frame.index)
        return out

    def _with_cache(self, frame: pd.DataFrame, cache: EmbeddingCache) -> pd.DataFrame:
        """Vectors from the cache where it has the normalized text, encoded (and added to it) where not."""
        rows = np.flatnonzero(frame["skip_reason"].isna().to_numpy())
        hashes = text_hashes(frame["text"].to_numpy()[rows].tolist())
        found, cached = cache.lookup(hashes)
        missing = rows[~found]
        fresh = self.raw(frame.iloc[missing])
        cache.add(hashes[~found], fresh)
        vectors = np.zeros((len(frame), fresh.shape[1]), dtype=np.float32)
        if found.any():
            vectors[rows[found]] = cached
        vectors[missing] = fresh
        out = self.with_vectors(frame, vectors)
        hit = np.zeros(len(frame), dtype=bool)
        hit[rows[found]] = True
        out[CACHE_HIT] = hit
        return out
