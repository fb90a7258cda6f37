"""Sources: the first step of every partition, reading its rows on a CPU worker.

A source declares the columns it yields, like a stage, so the stages after it are checked
against them before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.io.reader import Piece, read_piece, read_piece_table
from kbatch.stages.base import ID, ColumnType, Vectors

NO_VECTOR = "no_vector"


@dataclass(frozen=True)
class ReadText:
    """``id`` (the id column, else the row number) and ``text``, plus ``extra_cols`` and
    ``keep_cols`` under their own names. ``hive_cols`` are the keep columns that come from
    ``key=value`` path segments: strings, whatever a file's own column of that name holds."""

    text_col: str = "text"
    id_col: str | None = None
    extra_cols: tuple[str, ...] = ()
    keep_cols: tuple[str, ...] = ()
    hive_cols: tuple[str, ...] = ()

    @property
    def outputs(self) -> Mapping[str, ColumnType]:
        kept = {col: pa.string() if col in self.hive_cols else ID for col in self.keep_cols}
        return {"id": ID, **kept, "text": pa.string(), **{col: ID for col in self.extra_cols}}

    def __call__(self, piece: Piece) -> pd.DataFrame:
        return read_piece(piece, self.text_col, self.id_col, self.extra_cols, self.keep_cols)


@dataclass(frozen=True)
class ReadVectors:
    """``id``, ``embedding`` (Arrow-backed: no Python object per row), ``row`` (each row's number
    in the whole output) and ``skip_reason`` (``no_vector`` where a row has none) of an ``embed`` output."""

    @property
    def outputs(self) -> Mapping[str, ColumnType]:
        return {"id": ID, "embedding": Vectors(), "row": pa.int64(), "skip_reason": pa.string()}

    def __call__(self, piece: Piece) -> pd.DataFrame:
        table = read_piece_table(piece, piece.columns)
        embedding = table.column("embedding").combine_chunks()
        missing = embedding.is_null().to_numpy(zero_copy_only=False)
        return pd.DataFrame({"id": table.column("id").to_pandas(), "embedding": pd.arrays.ArrowExtensionArray(embedding),
                             "row": np.arange(piece.row_offset, piece.row_offset + piece.rows, dtype=np.int64),
                             "skip_reason": np.where(missing, NO_VECTOR, None)})
