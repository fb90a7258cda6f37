"""Text inputs (CSV, TSV, JSON Lines) parsed once into Arrow columns, line by line, so a
broken line or broken UTF-8 is reported with its line number."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa

from kbatch.errors import InputError, first_line
from kbatch.io import storage


def read_text_table(path: str, fmt: str, text_col: str, wanted: dict[str, str]) -> pa.Table:
    """Parse a CSV, TSV or JSONL file, refusing invalid UTF-8 and malformed rows with their line number."""
    data = storage.read_bytes(path)
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}: invalid UTF-8 at line {line} (byte {exc.start}); convert the file to UTF-8 first") from None
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    columns = _jsonl_columns(path, text, wanted) if fmt == "jsonl" else _delimited_columns(path, text, fmt, wanted)
    frame = pd.DataFrame(columns)
    frame[text_col] = frame[text_col].astype(object).where(frame[text_col].notna(), None)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, UnicodeEncodeError) as exc:
        raise InputError(f"{path}: {', '.join(map(repr, wanted))} cannot be read as text ({first_line(exc)})") from None


def _delimited_columns(path: str, text: str, fmt: str, wanted: dict[str, str]) -> dict[str, list]:
    """The ``wanted`` columns of a CSV or TSV file with a header row (TSV unquoted, as KorSTS
    is written). A row with more or fewer fields than the header is refused with its line
    number: filling the missing fields with empty text would skip a broken pair silently."""
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {"delimiter": ","}
    csv.field_size_limit(sys.maxsize)  # one review may be megabytes long
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    rows = []
    try:
        header = next(reader)
        for row in reader:
            if row and len(row) != len(header):
                raise InputError(f"{path}: line {reader.line_num} has {len(row)} fields, the header has {len(header)}")
            if row:
                rows.append(row)
    except csv.Error as exc:
        raise InputError(f"{path}: cannot parse as {fmt.upper()} at line {reader.line_num} ({exc})") from None
    check_columns(path, header, wanted)
    return {name: [row[header.index(name)] for row in rows] for name in wanted}


# A \ud800-\udfff escape: JSON can spell a lone surrogate, which no UTF-8 text can hold.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _jsonl_columns(path: str, text: str, wanted: dict[str, str]) -> dict[str, list]:
    """The ``wanted`` fields of each line's JSON object (null where a line lacks one). Lone
    surrogates are removed, as the normalize stage removes them from every format; a line
    that is not a JSON object is refused with its number."""
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit in a string
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}: line {number} is not valid JSON ({first_line(exc)})") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}: line {number} is not a JSON object")
        rows.append(row)
    check_columns(path, list(dict.fromkeys(key for row in rows for key in row)), wanted)
    columns = {name: [row.get(name) for row in rows] for name in wanted}
    if _SURROGATE_ESCAPE.search(text):
        columns = {name: [_without_surrogates(v) for v in values] for name, values in columns.items()}
    return columns


def _without_surrogates(value):
    return value.encode("utf-8", "ignore").decode("utf-8") if isinstance(value, str) else value


def read_utf8(path: str | Path, label: str) -> str:
    """A small text file (user words, training pairs), local or in a store, whole; a missing
    file or bad encoding is one line that starts with ``label``."""
    try:
        return storage.read_bytes(storage.location(path)).decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{label}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not UTF-8 (byte {exc.start})") from None




def check_columns(path: str, names: list[str], wanted: dict[str, str]) -> None:
    """Raise, naming the parameter that chose it, for a wanted column the file does not have."""
    for col, parameter in wanted.items():
        if col not in names:
            role = {"id_col": "id", "text_col": "text"}.get(parameter, parameter)
            raise InputError(f"{path}: no {role} column {col!r}; columns are {', '.join(names)} (choose one with `{parameter}`)")
