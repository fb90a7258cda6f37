"""A partition's identity: a hash of the rows a command read from it.

Each part file records the digest of the input rows it was made from. A rerun re-reads
those rows on a worker and keeps a part only when the digest is unchanged, so an input
edited in place (even to the same size) is computed again, never resumed with stale
results. Reading and hashing is cheap next to encoding (docs/decisions.md has numbers).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.io.reader import Piece, read_piece_table


def piece_digest(piece: Piece) -> str:
    """The digest of the columns ``piece`` is read for, over its rows, and of where those rows sit
    in the input: without an id column a row's id is its number, so the same rows moved down
    by an earlier file that grew are another partition."""
    rows = table_digest(read_piece_table(piece, piece.columns).select(list(dict.fromkeys(piece.columns))))
    return combined_digest([rows, f"rows {piece.row_offset}+{piece.rows}"])


def table_digest(table: pa.Table) -> str:
    """SHA-256 of a table's column names, types and values, whatever its chunks or buffers.

    Arrow IPC is no canonical form: a slice carries its parent's padding bytes, so the same
    rows cut from two row groups would hash apart. Values are hashed by their content instead.
    """
    digest = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        digest.update(name.encode("utf-8", "surrogatepass") + b"\0")
        _update(digest, column.combine_chunks())
    return digest.hexdigest()[:32]


def _update(digest, array: pa.Array) -> None:
    """Feed ``array``'s type, null positions and non-null values into ``digest``."""
    kind = array.type
    digest.update(f"{kind}:{len(array)}:".encode())
    digest.update(np.packbits(array.is_null().to_numpy(zero_copy_only=False)).tobytes())
    values = array.drop_null()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        values = values.cast(pa.large_binary())
        digest.update(pc.binary_length(values).to_numpy().tobytes())
        digest.update(b"".join(values.to_pylist()))
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        digest.update(pc.list_value_length(values).to_numpy(zero_copy_only=False).astype(np.int64).tobytes())
        _update(digest, values.flatten())
    elif pa.types.is_primitive(kind):
        digest.update(values.to_numpy(zero_copy_only=False).tobytes())
    else:  # rare column types (structs, dictionaries): their values as Python objects
        digest.update(repr(values.to_pylist()).encode("utf-8", "surrogatepass"))


def combined_digest(digests: list[str]) -> str:
    """One digest for a whole input: its partitions' digests in order."""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()[:32]


def params_key(params: dict) -> str:
    """A short hash of everything that makes two runs' outputs comparable."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
