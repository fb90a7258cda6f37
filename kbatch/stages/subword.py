"""Subword tokenization on CPU workers: only token ids travel to the encoder.

Ids leave this stage as an Arrow ``list<int32>`` column, which pickles as flat buffers,
so a GPU worker receives arrays instead of millions of small Python lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.errors import ModelError
from kbatch.stages.base import Stage

# Texts longer than this many characters per allowed token are cut before tokenizing:
# no tokenizer yields fewer tokens per character, and a 100,000-character review would
# otherwise cost more than the rest of its partition.
CHARS_PER_TOKEN_LIMIT = 16


@lru_cache(maxsize=4)
def load_tokenizer(model_path: str, max_length: int):
    """The model's fast tokenizer, set to truncate, loaded once per worker process."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not tokenizer.is_fast:
        raise ModelError(f"{model_path}: kbatch needs a fast (Rust) tokenizer, i.e. a tokenizer.json")
    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.enable_truncation(max_length=max_length)
    return backend


@dataclass(frozen=True)
class SubwordTokenize(Stage):
    """Adds ``input_ids`` (list<int32>), ``n_tokens`` and ``truncated``; skipped rows get no ids."""

    model_path: str
    max_seq_length: int

    needs = ("text", "skip_reason")
    adds = ("input_ids", "n_tokens", "truncated")

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        tokenizer = load_tokenizer(self.model_path, self.max_seq_length)
        keep = frame["skip_reason"].isna().to_numpy()
        texts = frame["text"].to_numpy()[keep]
        limit = self.max_seq_length * CHARS_PER_TOKEN_LIMIT
        cut = np.fromiter((len(t) > limit for t in texts), dtype=bool, count=len(texts))
        encodings = tokenizer.encode_batch([t[:limit] for t in texts])
        lengths = np.zeros(len(frame), dtype=np.int32)
        lengths[keep] = [len(e.ids) for e in encodings]
        truncated = np.zeros(len(frame), dtype=bool)
        truncated[keep] = cut | np.fromiter((bool(e.overflowing) for e in encodings), dtype=bool, count=len(texts))
        flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(lengths.sum()))
        offsets = np.zeros(len(frame) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
        out = frame.copy()
        out["input_ids"] = pd.Series(pd.arrays.ArrowExtensionArray(ids), index=frame.index)
        out["n_tokens"] = lengths
        out["truncated"] = truncated
        return out
