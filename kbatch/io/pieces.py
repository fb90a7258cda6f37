"""A partition of an input (a :class:`Piece`: ranges of rows of one or more files) and how a
worker reads it.

A piece holds several ranges so that a directory of thousands of tiny files becomes a few
partitions of about ``partition_rows`` rows, not one partition (and one task) per file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.caches import worker_cache
from kbatch.errors import InputError, first_line
from kbatch.io import storage


@dataclass(frozen=True)
class Span:
    """Rows ``start:stop`` of one Parquet row group, or of a parsed text file. ``carried``: the
    rows travel in the piece's ``table`` (a text file's, and a small Parquet file's as planning
    decoded them), so no worker opens the file again. ``hive`` holds the ``key=value``
    segments of the file's path that the command reads as columns (they replace a file
    column of that name)."""

    path: str
    format: str
    start: int
    stop: int
    row_group: int | None = None
    carried: bool = False
    hive: tuple[tuple[str, str], ...] = ()

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Piece:
    """One partition: ``spans`` of rows, read one after the other.

    ``row_offset`` numbers the first row across the whole input. ``columns`` are the columns
    the command reads: what a partition's identity is computed from (:mod:`kbatch.io.identity`).
    ``table`` holds the rows of its carried spans, one after the other, as one chunk: pickled
    once, not once per file (2,000 tables of 2 rows: 0.1 s to pickle and unpickle).
    """

    index: int
    spans: tuple[Span, ...]
    row_offset: int
    columns: tuple[str, ...] = ()
    table: pa.Table | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return sum(span.rows for span in self.spans)

    @property
    def path(self) -> str:
        """The first file read, for messages."""
        return self.spans[0].path


@dataclass(frozen=True)
class InputPlan:
    """The partitions of an input and what it was planned from (files, sizes, rows).
    ``hive_keys``: the columns read from ``key=value`` path segments (strings)."""

    pieces: list[Piece]
    fingerprint: dict
    hive_keys: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.pieces)


def read_piece(piece: Piece, text_col: str, id_col: str | None, extra_cols: Sequence[str] = (),
               keep_cols: Sequence[str] = ()) -> pd.DataFrame:
    """Rows of one partition as ``id``, ``keep_cols`` and ``text`` columns (plus ``extra_cols``
    under their own names), ids stable across reruns."""
    table = read_piece_table(piece, [text_col, *([id_col] if id_col else []), *extra_cols, *keep_cols])
    frame = pd.DataFrame({"text": table.column(text_col).to_pandas()})
    for col in extra_cols:
        frame[col] = table.column(col).to_pandas()
    for at, col in enumerate(keep_cols):
        frame.insert(at, col, table.column(col).to_pandas())
    if id_col:
        frame.insert(0, "id", table.column(id_col).to_pandas())
    else:
        frame.insert(0, "id", pd.RangeIndex(piece.row_offset, piece.row_offset + piece.rows, dtype="int64"))
    return frame


def read_piece_table(piece: Piece, columns: Sequence[str]) -> pa.Table:
    """The rows of one partition as an Arrow table of ``columns``: its spans one after the other."""
    if len(piece.spans) == 1:
        return _read_span(piece.spans[0], columns, rows=piece.table)
    if piece.table is not None and all(span.carried and not span.hive for span in piece.spans):
        return piece.table.select(list(dict.fromkeys(columns)))  # its rows are the spans' rows already
    if piece.table is not None:
        return _concat(piece.spans, columns, carried=piece.table)
    # Files of a few rows each: keep the whole partition, which the digest reads again.
    versions = tuple(storage.version(path) for path in _paths(piece.spans))
    return _read_spans(piece.spans, tuple(dict.fromkeys(columns)), versions)


def _paths(spans: Sequence[Span]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(span.path for span in spans))


@worker_cache(2)
def _read_spans(spans: tuple[Span, ...], columns: tuple[str, ...], versions: tuple) -> pa.Table:
    """The rows of Parquet spans of several files, kept for the partition's digest (``versions``
    of the files in the key, as in :func:`_read_row_group`, and not asked for again per span)."""
    return _concat(spans, columns, dict(zip(_paths(spans), versions, strict=True)))


def _concat(spans: Sequence[Span], columns: Sequence[str], versions: Mapping[str, tuple] | None = None,
            carried: pa.Table | None = None) -> pa.Table:
    """Spans' rows one after the other (``carried``: the rows of the carried ones, in order)."""
    tables = [_read_span(span, columns, (versions or {}).get(span.path), rows)
              for span, rows in zip(spans, _carried_rows(spans, carried), strict=True)]
    return concat_rows(spans, tables)


def concat_rows(spans: Sequence[Span], tables: list[pa.Table]) -> pa.Table:
    """The tables of ``spans`` as one table of one chunk (Arrow kernels over a column of 2,000
    one-file chunks took 7x as long: normalize), or an error naming the files that differ."""
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowException, TypeError) as exc:
        paths = ", ".join(dict.fromkeys(span.path for span in spans))
        raise InputError(f"{spans[0].path}: its columns do not match those of the files read with it ({paths}): "
                         f"{first_line(exc)}") from None


def _carried_rows(spans: Sequence[Span], carried: pa.Table | None) -> list[pa.Table | None]:
    """Each span's slice of ``carried``, or None for a span read from its file."""
    slices, at = [], 0
    for span in spans:
        slices.append(carried.slice(at, span.rows) if span.carried and carried is not None else None)
        at += span.rows if span.carried else 0
    return slices


def _read_span(span: Span, columns: Sequence[str], version: tuple | None = None, rows: pa.Table | None = None) -> pa.Table:
    """One span's rows (``rows``: carried in the piece); its hive values as string columns, in
    the order of ``columns`` (``version``: the file's, when the caller already has it)."""
    hive = dict(span.hive)
    wanted = tuple(dict.fromkeys(c for c in columns if c not in hive))
    if rows is not None:
        table = rows.select(list(wanted))
    else:
        try:
            group = _read_row_group(span.path, span.row_group, wanted, version or storage.version(span.path))
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{span.path}: cannot read rows {span.start}-{span.stop} ({first_line(exc)})") from None
        table = group.slice(span.start, span.rows)
    if not hive:
        return table
    table = table.select([c for c in table.column_names if c not in hive])
    for key, value in hive.items():
        table = table.append_column(pa.field(key, pa.string()), pa.array([value] * table.num_rows, pa.string()))
    return table.select(list(dict.fromkeys(columns)))


@contextmanager
def parquet_file(path: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file, local or in a store, with its page checksums checked on read. A local one
    is opened as Arrow's own file, not pre-buffered: fsspec's wrapper, Arrow's path resolution
    and pre-buffering cost 0.1 ms a file, much for tiny files and nothing saved on a disk."""
    if not storage.is_url(path):
        with pa.OSFile(path) as source, pq.ParquetFile(source, page_checksum_verification=True, pre_buffer=False) as parquet:
            yield parquet
        return
    fs, inner = storage.filesystem(path)
    with pq.ParquetFile(inner, filesystem=fs, page_checksum_verification=True) as parquet:
        yield parquet


@worker_cache(2)
def _read_row_group(path: str, row_group: int, columns: tuple[str, ...], version: tuple) -> pa.Table:
    """One row group, kept while a worker reads the next partitions cut from it.

    Parquet cannot start reading in the middle of a row group, so without this a file
    written as one 100,000-row group would be read once per 1,000-row partition.
    ``version`` (:func:`kbatch.io.storage.version`) is part of the key so a rewritten file is
    read again: size and mtime alone can be kept by an edit (``touch -r``), ctime cannot.
    """
    with parquet_file(path) as parquet:
        return parquet.read_row_group(row_group, columns=list(columns))
