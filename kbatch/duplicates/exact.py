"""The exact pass: rows whose normalized text is identical, found by a 128-bit hash of it.

The text is normalized as every embedding is (:class:`~kbatch.stages.normalize.NormalizeText`:
NFC, invisible characters removed, whitespace collapsed) and then folded to a dedup key:
lower case, no spaces, no emoji or other symbols, a character repeated three times or more
kept twice (``ㅋㅋㅋㅋㅋ`` → ``ㅋㅋ``). use-m3 puts a review and the same review with ``😂😂``
at cosine 0.85–0.95 and a review with two spaces removed at 0.92–0.96 (measured on NSMC):
below any safe threshold, though a person reads them as one text. Hashing runs on the
workers, one source partition per task; the client receives two hash pairs, a length and an
id per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.duplicates.seen import seen_by_model
from kbatch.io.reader import Piece, read_piece
from kbatch.models.resolve import ModelSpec
from kbatch.stages.normalize import NormalizeText

# Two independent 64-bit hashes (pandas' SipHash keys are 16 characters): a false match of
# two different texts among a billion rows has a chance of about 10^-21.
HASH_KEYS = ("kbatch-dedup-h1.", "kbatch-dedup-h2.")
# Left out of the key: whitespace, symbols (emoji are So), modifiers, variation selectors, joiners, keycaps (RE2).
_FOLDED = r"[\s\p{Z}\p{So}\p{Sk}\x{fe00}-\x{fe0f}\x{200d}\x{20e3}]+"
_REPEATS = re.compile(r"(.)\1{2,}")


@dataclass
class Hashed:
    """Rows of one or more partitions: ids, the hash pairs of the dedup key and of the normalized
    text (what ``embed`` encodes: rows with one normalized text have one vector), the length,
    and why a row has no text to compare (``None`` where it has)."""

    ids: pa.Array
    keys: np.ndarray  # rows × 2, uint64
    texts: np.ndarray  # rows × 2, uint64
    lengths: np.ndarray  # int32, characters of the text
    skip_reason: np.ndarray  # object: None, "null_text" or "empty_text"
    seen: np.ndarray  # bool: the model knows a word piece of the text (all True without a model)

    @property
    def has_text(self) -> np.ndarray:
        return pd.isna(self.skip_reason)


def dedup_keys(texts: pd.Series) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Each text's dedup key (normalized, then folded as the module says), normalized text and skip reason."""
    frame = NormalizeText().process(pd.DataFrame({"text": texts}))
    folded = pc.replace_substring_regex(pc.utf8_lower(pa.array(frame["text"], pa.large_string())), _FOLDED, "")
    keys = [None if text is None else _REPEATS.sub(r"\1\1", text) for text in folded.to_pylist()]
    return pd.Series(keys, index=texts.index, dtype=object), frame["text"], frame["skip_reason"].to_numpy(dtype=object)


def _hash_pairs(values: pd.Series) -> np.ndarray:
    strings = values.fillna("").to_numpy(dtype=object)
    return np.stack([pd.util.hash_array(strings, hash_key=key, categorize=False) for key in HASH_KEYS], axis=1)


def hash_piece(piece: Piece, text_col: str, id_col: str | None, model: ModelSpec | None = None) -> Hashed:
    """One source partition hashed (a task); with ``model``, which texts it can see."""
    frame = read_piece(piece, text_col, id_col)
    keys, normalized, reasons = dedup_keys(frame["text"])
    seen = np.ones(len(frame), dtype=bool)
    if model is not None:
        has_text = pd.isna(reasons)
        seen[has_text] = seen_by_model(normalized[has_text].tolist(), model)
    return Hashed(pa.array(frame["id"]), _hash_pairs(keys), _hash_pairs(normalized),
                  frame["text"].fillna("").astype(str).str.len().to_numpy(np.int32), reasons, seen)


def join_hashed(*parts: Hashed) -> Hashed:
    return Hashed(pa.concat_arrays([p.ids for p in parts]), np.concatenate([p.keys for p in parts]),
                  np.concatenate([p.texts for p in parts]), np.concatenate([p.lengths for p in parts]),
                  np.concatenate([p.skip_reason for p in parts]), np.concatenate([p.seen for p in parts]))


def first_copies(hashes: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """For every row, the first row (lowest number) with the same hash pair; itself for a row
    without text, which is never anyone's duplicate."""
    frame = pd.DataFrame({"h1": hashes[:, 0], "h2": hashes[:, 1], "row": np.arange(len(hashes))})
    first = frame[has_text].groupby(["h1", "h2"], sort=False)["row"].transform("min").to_numpy()
    out = np.arange(len(hashes))
    out[has_text] = first
    return out
