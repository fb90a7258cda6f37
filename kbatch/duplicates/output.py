"""What ``dedup`` writes: ``kept/`` (one part per source partition, by the workers),
``groups.parquet`` and ``_kept.parquet`` (by the client, which holds only grouped rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.io import storage
from kbatch.io.reader import Piece, read_piece, read_piece_table
from kbatch.io.writer import part_name

GROUPS_SCHEMA = {"group_id": "int64", "id": "id", "representative_id": "id", "cosine": "float32"}


def write_kept_part(piece: Piece, dropped: np.ndarray, directory: str, text_col: str, id_col: str | None,
                    columns: tuple[str, ...] | None) -> int:
    """The rows of one source partition that are not ``dropped`` (sorted input rows): their ids, or
    the rows themselves with ``columns`` (a task). Returns how many were kept."""
    rows = np.arange(piece.row_offset, piece.row_offset + piece.rows)
    keep = pa.array(np.flatnonzero(~np.isin(rows, dropped, assume_unique=True)))
    if columns is None:
        table = pa.table({"id": pa.array(read_piece(piece, text_col, id_col)["id"])}).take(keep)
    else:
        table = read_piece_table(piece, columns).take(keep)
    storage.write_parquet(table, storage.join(directory, part_name(piece.index)))
    return len(keep)


def write_groups(out: str, group_id: np.ndarray, ids: pa.Array, representative_ids: pa.Array, cosine: np.ndarray) -> None:
    table = pa.table({"group_id": pa.array(group_id, pa.int64()), "id": ids, "representative_id": representative_ids,
                      "cosine": pa.array(cosine, pa.float32())})
    order = pd.DataFrame({"g": group_id, "c": -cosine}).sort_values(["g", "c"], kind="stable").index.to_numpy()
    storage.write_parquet(table.take(pa.array(order)), storage.join(out, "groups.parquet"))
