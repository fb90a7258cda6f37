"""The exact pass: rows whose normalized text is identical, found by a 128-bit hash of it.

The text is normalized as every embedding is (:class:`~kbatch.stages.normalize.NormalizeText`:
NFC, invisible characters removed, whitespace collapsed), so two rows that differ only there
are one text. Hashing runs on the workers, one source partition per task; the client receives
two 64-bit hashes, a length and an id per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.io.reader import Piece, read_piece
from kbatch.stages.normalize import NormalizeText

# Two independent 64-bit hashes (pandas' SipHash keys are 16 characters): a false match of
# two different texts among a billion rows has a chance of about 10^-21.
HASH_KEYS = ("kbatch-dedup-h1.", "kbatch-dedup-h2.")


@dataclass
class Hashed:
    """Rows of one or more partitions: ids, the hash pair and length of the normalized text,
    and why a row has no text to compare (``None`` where it has)."""

    ids: pa.Array
    hashes: np.ndarray  # rows × 2, uint64
    lengths: np.ndarray  # int32, characters of the normalized text
    skip_reason: np.ndarray  # object: None, "null_text" or "empty_text"

    @property
    def has_text(self) -> np.ndarray:
        return pd.isna(self.skip_reason)


def normalized_hashes(texts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hash pair, length and skip reason of each text after normalization."""
    frame = NormalizeText().process(pd.DataFrame({"text": texts}))
    normalized = frame["text"].fillna("").astype(object).to_numpy()
    hashes = np.stack([pd.util.hash_array(normalized, hash_key=key, categorize=False) for key in HASH_KEYS], axis=1)
    return hashes, frame["text"].fillna("").str.len().to_numpy(np.int32), frame["skip_reason"].to_numpy(dtype=object)


def hash_piece(piece: Piece, text_col: str, id_col: str | None) -> Hashed:
    """One source partition hashed (a task)."""
    frame = read_piece(piece, text_col, id_col)
    hashes, lengths, reasons = normalized_hashes(frame["text"])
    return Hashed(pa.array(frame["id"]), hashes, lengths, reasons)


def join_hashed(*parts: Hashed) -> Hashed:
    return Hashed(pa.concat_arrays([p.ids for p in parts]), np.concatenate([p.hashes for p in parts]),
                  np.concatenate([p.lengths for p in parts]), np.concatenate([p.skip_reason for p in parts]))


def first_copies(hashes: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """For every row, the first row (lowest number) with the same hash pair; itself for a row
    without text, which is never anyone's duplicate."""
    frame = pd.DataFrame({"h1": hashes[:, 0], "h2": hashes[:, 1], "row": np.arange(len(hashes))})
    first = frame[has_text].groupby(["h1", "h2"], sort=False)["row"].transform("min").to_numpy()
    out = np.arange(len(hashes))
    out[has_text] = first
    return out
