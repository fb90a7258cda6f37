"""Last night's matches for the left rows that did not change.

When the right side (the catalog) is exactly last night's and the options are the same,
a left row whose vector is bit-for-bit last night's (its text was unchanged, so the
embedding cache gave the same vector) has last night's matches. Only the other rows are
searched; the night's output is still complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.caches import worker_cache
from kbatch.io import storage
from kbatch.io.identity import combined_digest, table_digest
from kbatch.io.writer import MANIFEST
from kbatch.vectors.columns import read_vectors, vector_matrix

# Options that must be last night's for its matches to be this night's.
SAME_OPTIONS = ("model", "top_k", "min_score", "spec_aware", "index")


def side_digest(directory: str) -> str:
    """A hash of a side's ids and vectors by their values (:mod:`kbatch.io.identity`): equal digests, equal catalogs."""
    parts = storage.glob(directory, "part-*.parquet")
    return combined_digest([table_digest(storage.read_table(part, ["id", "embedding"])) for part in parts])


@dataclass(frozen=True)
class PreviousMatches:
    """A previous match output and its left vectors (picklable; workers load them once)."""

    matches: str
    left_vectors: str

    @classmethod
    def find(cls, directory: str | os.PathLike[str] | None, params: dict, right_digest: str) -> PreviousMatches | None:
        """``directory``'s matches if they were made against the same right side with the same options, else ``None``."""
        if directory is None or not storage.is_file(storage.join(storage.location(directory), MANIFEST)):
            return None
        directory = storage.location(directory)
        manifest = json.loads(storage.read_bytes(storage.join(directory, MANIFEST)))
        same = manifest.get("right_digest") == right_digest and all(manifest["params"].get(k) == params.get(k) for k in SAME_OPTIONS)
        left = storage.join(directory, "_embeddings", "left")
        if not same or manifest.get("status") != "complete" or manifest["side_duplicate_ids"]["left"] or not storage.is_dir(left):
            return None
        return cls(directory, left)

    def reusable(self, ids: pa.Array, vectors: np.ndarray, has_vector: np.ndarray) -> tuple[np.ndarray, pa.Table]:
        """Which rows are unchanged (same id, same vector as before), and their previous matches with their ``position``."""
        index, old_vectors, matches = _load(self.matches, self.left_vectors)
        rows = np.array([index.get(i, -1) for i in ids.to_pylist()], dtype=np.int64)
        same = (rows >= 0) & has_vector & ids.is_valid().to_numpy(zero_copy_only=False)  # a row with no id is no row of last night's
        same[same] = np.all(old_vectors[rows[same]] == vectors[same], axis=1)
        position = pc.index_in(matches.column("left_id"), value_set=ids.filter(pa.array(same)))
        kept = matches.filter(position.is_valid())
        where = pc.index_in(kept.column("left_id"), value_set=ids).to_numpy()
        return same, kept.append_column("position", pa.array(where, pa.int64()))


@worker_cache(1)
def _load(matches_dir: str, left_dir: str) -> tuple[dict, np.ndarray, pa.Table]:
    left = read_vectors(left_dir)
    vectors, _ = vector_matrix(left.column("embedding").combine_chunks())
    index = {i: n for n, i in enumerate(left.column("id").to_pylist())}
    matches = pa.concat_tables([storage.read_table(part, ["left_id", "right_id", "score", "rank"])
                                for part in storage.glob(matches_dir, "part-*.parquet")])
    return index, vectors, matches
