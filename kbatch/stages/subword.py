"""Subword tokenization on CPU workers: only token ids travel to the encoder.

Ids leave this stage as an Arrow ``list<int32>`` column, which pickles as flat buffers,
so a GPU worker receives arrays instead of millions of small Python lists. A model's
tokenizer is its fast (Rust) Hugging Face tokenizer, or SentencePiece (C++) for USE-m3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.caches import worker_cache
from kbatch.errors import ModelError
from kbatch.stages.base import ColumnType, Stage

if TYPE_CHECKING:
    from kbatch.models.resolve import ModelSpec

# Texts longer than this many characters per allowed token are cut before tokenizing:
# no tokenizer yields fewer tokens per character, and a 100,000-character review would
# otherwise cost more than the rest of its partition.
CHARS_PER_TOKEN_LIMIT = 16


class SubwordTokenizer(Protocol):
    """What the stage needs of a tokenizer: ids with special tokens, cut to the model's length."""

    unk_token_id: int | None

    def encode_batch(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Ids per text, and whether each text was cut."""

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]: ...


class FastTokenizer:
    """A Hugging Face fast tokenizer, truncating to ``max_length``."""

    def __init__(self, model_path: str, max_length: int, trust_remote_code: bool = False) -> None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust_remote_code)
        if not tokenizer.is_fast:
            raise ModelError(f"{model_path}: kbatch needs a fast (Rust) tokenizer, i.e. a tokenizer.json")
        self.unk_token_id = tokenizer.unk_token_id
        self.backend = tokenizer.backend_tokenizer
        self.backend.no_padding()
        self.backend.enable_truncation(max_length=max_length)

    def encode_batch(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        encodings = self.backend.encode_batch(list(texts))
        return [e.ids for e in encodings], [bool(e.overflowing) for e in encodings]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self.backend.id_to_token(int(i)) for i in ids]


@worker_cache(4)
def load_tokenizer(model_path: str, max_length: int, trust_remote_code: bool = False) -> SubwordTokenizer:
    """The model's tokenizer, set to truncate, loaded once per worker process; the folder's own
    tokenizer code runs only when the user trusted it (``--trust-remote-code``)."""
    from kbatch.models.resolve import first_module
    from kbatch.use_m3 import EMBEDDING_MODULE, SENTENCEPIECE_FILE, SentencePieceTokenizer

    if first_module(model_path) == EMBEDDING_MODULE:
        return SentencePieceTokenizer(str(Path(model_path) / SENTENCEPIECE_FILE), max_length)
    return FastTokenizer(model_path, max_length, trust_remote_code)


@dataclass(frozen=True)
class SubwordTokenize(Stage):
    """Adds ``input_ids`` (list<int32>), ``n_tokens`` and ``truncated``; skipped rows get no ids.
    ``prompt`` (e5's ``query: ``) goes before every text, as sentence-transformers puts it."""

    model_path: str
    max_seq_length: int
    trust_remote_code: bool = False
    prompt: str = ""

    needs = ("text", "skip_reason")
    outputs: ClassVar[dict[str, ColumnType]] = {"input_ids": pa.list_(pa.int32()), "n_tokens": pa.int32(), "truncated": pa.bool_()}

    @classmethod
    def for_model(cls, spec: ModelSpec, prompt: str = "") -> SubwordTokenize:
        """The stage for a resolved model, with the trust the client checked."""
        return cls(spec.path, spec.max_seq_length, spec.trust_remote_code, prompt)

    def setup(self) -> None:
        load_tokenizer(self.model_path, self.max_seq_length, self.trust_remote_code)

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        return {"truncated": int(frame["truncated"].sum()), "tokens": int(frame["n_tokens"].sum())}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        tokenizer = load_tokenizer(self.model_path, self.max_seq_length, self.trust_remote_code)
        keep = frame["skip_reason"].isna().to_numpy()
        texts = frame["text"].to_numpy()[keep]
        limit = self.max_seq_length * CHARS_PER_TOKEN_LIMIT
        cut = np.fromiter((len(t) > limit for t in texts), dtype=bool, count=len(texts))
        per_text, overflowed = tokenizer.encode_batch([self.prompt + t[:limit] for t in texts])
        lengths = np.zeros(len(frame), dtype=np.int32)
        lengths[keep] = [len(i) for i in per_text]
        truncated = np.zeros(len(frame), dtype=bool)
        truncated[keep] = cut | np.asarray(overflowed, dtype=bool)
        flat = np.fromiter(chain.from_iterable(per_text), dtype=np.int32, count=int(lengths.sum()))
        offsets = np.zeros(len(frame) + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
        out = frame.copy()
        out["input_ids"] = pd.Series(pd.arrays.ArrowExtensionArray(ids), index=frame.index)
        out["n_tokens"] = lengths
        out["truncated"] = truncated
        return out
