"""One partition sink: the declared columns written atomically, timed, with the part's record.

Every partitioned command ends here. The sink casts the last stage's frame to the schema
the stages declared (a file's schema never depends on what pandas inferred), writes it
under a temporary name and renames it. The record goes into the Parquet footer after the
data pages are written, so it holds the write's own seconds and a resumed partition
reports them too. The manifest's ``output_schema`` comes from the same declaration
(:meth:`PartitionSink.output_schema`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.io import storage
from kbatch.io.writer import META_KEY, part_name
from kbatch.stages.base import ColumnType, SameAsInput, Vectors


@dataclass
class PartitionReport:
    """What one partition says about itself, in its part file and in the manifest."""

    index: int
    rows: int
    input_digest: str
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    skipped: dict[str, int] | None = None

    def note_skips(self, frame: pd.DataFrame) -> None:
        """The skip reasons of the partition's rows, from ``frame``'s ``skip_reason``."""
        reasons = frame["skip_reason"] if "skip_reason" in frame else pd.Series(dtype=object)
        self.skipped = {str(reason): int(n) for reason, n in reasons.value_counts().items()}

    def record(self) -> dict:
        record = {"index": self.index, "rows": self.rows, "input_digest": self.input_digest, "skipped": self.skipped or {},
                  "counts": self.counts, "seconds": self.seconds, "worker": _worker_name()}
        return {**record, "errors": self.errors} if self.errors else record


@dataclass(frozen=True)
class PartitionSink:
    """Writes ``columns`` (name → declared type) of one partition to ``directory``, with
    ``metadata`` (the run's params key and description) in every part's footer."""

    directory: str
    columns: Mapping[str, ColumnType]
    metadata: Mapping = field(default_factory=dict)

    def output_schema(self) -> dict[str, str]:
        """The declared columns as the manifest describes them (the id column's type is the input's)."""
        return {name: _type_name(kind) for name, kind in self.columns.items()}

    def table(self, frame: pd.DataFrame | pa.Table) -> pa.Table:
        """``frame``'s declared columns as Arrow arrays of their declared types."""
        return pa.table({name: _column(frame[name], name, kind) for name, kind in self.columns.items()})

    def write(self, frame: pd.DataFrame | pa.Table, report: PartitionReport, described: Mapping = ()) -> dict:
        """Write the partition atomically; the record it carries (``described`` are the stages' additions).

        The Arrow schema holds the record as it was before the write (what pandas and
        ``read_schema`` show); the file's key-value footer, written after the data, holds it
        with the write's seconds (what a rerun reads, :func:`~kbatch.io.writer.read_kbatch_metadata`).
        """
        start = time.perf_counter()
        table = self.table(frame)
        target = storage.join(self.directory, part_name(report.index))
        record = {**self.metadata, **dict(described), "partition": report.record()}
        table = table.replace_schema_metadata({META_KEY: json.dumps(record, ensure_ascii=False).encode()})
        with storage.atomic_write(target) as handle, pq.ParquetWriter(handle, table.schema, compression="zstd") as writer:
            writer.write_table(table)
            report.seconds["write"] = time.perf_counter() - start
            record = {**record, "partition": report.record()}
            writer.add_key_value_metadata({META_KEY: json.dumps(record, ensure_ascii=False).encode()})
        return record


def _type_name(kind: ColumnType) -> str:
    """Arrow's name of a type, as the manifest has always written it: list<string>, float32."""
    name = re.sub(r"\bitem: ", "", str(kind))
    return re.sub(r"\b(halffloat|float|double)\b", lambda found: _FLOAT_NAMES[found[1]], name)


_FLOAT_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64"}


def _column(values: pd.Series | pa.ChunkedArray, name: str, kind: ColumnType) -> pa.Array | pa.ChunkedArray:
    array = values if isinstance(values, pa.ChunkedArray) else pa.array(values)
    if isinstance(kind, SameAsInput):
        return array
    if isinstance(kind, Vectors):
        if not kind.accepts(array.type):
            raise TypeError(f"column {name} is {array.type}, not the declared {kind}")
        return array
    return array if array.type == kind else array.cast(kind)


def _worker_name() -> str | None:
    from distributed import get_worker

    try:
        return str(get_worker().name)
    except ValueError:
        return None
