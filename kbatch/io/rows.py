"""Read rows by their number across an input, whatever its partitioning.

The steps of one command often come from different outputs (vectors from ``embed``,
morphemes from ``tokenize``, labels from the source), each cut into partitions of its
own size; a worker reads rows ``start:stop`` of each without caring how they were cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import pyarrow as pa

from kbatch.io.reader import Piece, plan_input, read_piece_table

Source = str | tuple[str, ...]


@lru_cache(maxsize=8)
def _pieces(source: Source, column: str, is_string: bool) -> tuple[Piece, ...]:
    """The partitions of ``source``, planned once per worker (Parquet footers only)."""
    return tuple(plan_input(list(source) if isinstance(source, tuple) else source, column, text_is_string=is_string).pieces)


def overlapping(pieces: Sequence[Piece], start: int, stop: int) -> list[Piece]:
    """The pieces that hold any of rows ``start:stop``."""
    return [p for p in pieces if p.row_offset < stop and p.row_offset + p.rows > start]


def read_rows(source: Source, column: str, start: int, stop: int, *, is_string: bool = True) -> pa.Array:
    """Column ``column`` of rows ``start:stop`` of ``source`` (a file, directory or tuple of files)."""
    parts = []
    for piece in overlapping(_pieces(source, column, is_string), start, stop):
        lo, hi = max(start, piece.row_offset), min(stop, piece.row_offset + piece.rows)
        parts.append(read_piece_table(piece, [column]).column(column).slice(lo - piece.row_offset, hi - lo).combine_chunks())
    if not parts:
        raise ValueError(f"rows {start}-{stop} are not in {source}")
    return pa.concat_arrays(parts)
