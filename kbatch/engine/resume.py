"""What a rerun may keep: complete partitions whose input rows have not changed, an output
kept apart from its input, and the id problems a finished output is checked for."""

from __future__ import annotations

import fnmatch
import os
import uuid
from collections.abc import Callable, Sequence
from typing import TextIO

import pyarrow as pa

from kbatch.engine.cluster import Cluster
from kbatch.errors import OutputConflictError
from kbatch.io import storage
from kbatch.io.identity import piece_digest
from kbatch.io.reader import Piece, find_input_files
from kbatch.io.writer import OutputDir, part_name


def unchanged_partitions(cluster: Cluster, pieces: Sequence[Piece], done: dict[int, dict], log: TextIO,
                         reusable: Callable[[Cluster, dict], bool] | None = None) -> dict[int, dict]:
    """The complete partitions whose input rows are still those they were made from (and that
    ``reusable`` accepts).

    Workers re-read and hash each one (sizes and dates prove nothing: an edit can keep
    both); a partition whose rows changed, or that records no digest, is computed again.
    """
    if reusable is not None:
        kept = {index: meta for index, meta in done.items() if reusable(cluster, meta)}
        if len(kept) < len(done):
            print(f"kbatch: {len(done) - len(kept):,} complete partitions were made with other settings on another cluster "
                  "(precision); computing them again", file=log)
        done = kept
    checked = [p for p in pieces if p.index in done]
    if not checked:
        return done
    run = uuid.uuid4().hex[:8]
    digests = cluster.client.gather(cluster.client.map(
        piece_digest, checked, key=[f"kbatch-verify-{run}-{p.index}" for p in checked], resources=cluster.routing.cpu,
    ))
    unchanged = {p.index: done[p.index] for p, digest in zip(checked, digests, strict=True)
                 if done[p.index]["partition"].get("input_digest") == digest}
    if len(unchanged) < len(done):
        print(f"kbatch: {len(done) - len(unchanged):,} of {len(done):,} complete partitions were made from input rows that "
              "have changed since; computing them again", file=log)
    return unchanged


def check_output_apart(output: str | os.PathLike[str], source, files: Sequence[str] | None = None) -> None:
    """Refuse an output that would mix with its input: part files among the input files (a
    later run would read them as input, ``overwrite`` would delete input files named like
    them), or where the input's glob would read them."""
    out = storage.location(output)
    for file in files if files is not None else find_input_files(source):  # ``files``: as planned, not listed again
        if storage.parent_of(file) == out:
            raise OutputConflictError(f"output {output} is the directory of input file {file}; choose an output directory apart")
    patterns = source if isinstance(source, (list, tuple)) else [source]
    for pattern in patterns:  # directories are read recursively: parts written below one would be read next time
        inside = storage.location(pattern)
        fs, path = storage.filesystem(inside)
        if out.startswith(inside.rstrip("/") + "/") and fs.isdir(path):
            raise OutputConflictError(f"output {output} is inside the input directory {pattern}; choose an output directory apart")
    for pattern in map(str, patterns):
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(storage.join(out, part_name(0)), storage.location(pattern)):
            raise OutputConflictError(f"output {output} would be read by the input pattern {pattern!r}; choose an output directory apart")


def id_problems(out: OutputDir, n_partitions: int) -> dict[str, int]:
    """Rows of the output whose ``id`` repeats another row's, and rows with no id at all."""
    ids = pa.concat_arrays([storage.read_table(out.part(i), ["id"]).column("id").combine_chunks() for i in range(n_partitions)])
    present = ids.drop_null()
    return {"duplicate_ids": len(present) - len(present.unique()), "null_ids": ids.null_count}
