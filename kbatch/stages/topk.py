"""Top-k cosine of each left row against a whole right side, on the worker that holds the
right side's vectors (once per worker, on its GPU when it has one).

The right side is an ``embed`` output; each worker loads it once into its caches
(:mod:`kbatch.caches`), and nothing ever holds a left × right matrix: the search runs
block by block (:mod:`kbatch.vectors.topk`) or through an HNSW index (:mod:`kbatch.vectors.ann`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.caches import worker_cache
from kbatch.io import storage
from kbatch.stages.base import GPU, ID, ColumnType, Stage
from kbatch.vectors.columns import read_vectors, vector_matrix
from kbatch.vectors.incremental import PreviousMatches

# Spec-aware matching: cosine candidates per wanted match, and the score lost per conflicting
# spec (more than the cosine gap between products that differ in one spec; bench/match.py).
SPEC_CANDIDATES = 4
SPEC_PENALTY = 0.1


@dataclass(frozen=True)
class TopK(Stage):
    """Turns left rows into ``left_id, right_id, score, rank``: the ``top_k`` right rows of each
    by cosine (at least ``min_score``), re-ranked by spec conflicts when ``specs`` (the two
    sides' spec files) are given; rows ``previous`` matched with the same vector keep those matches."""

    right_dir: str
    top_k: int
    min_score: float | None = None
    self_match: bool = False
    specs: tuple[str, str] | None = None
    ann_path: str | None = None
    threads: int | None = None
    previous: PreviousMatches | None = None

    needs = ("id", "embedding", "row")
    outputs: ClassVar[dict[str, ColumnType]] = {"left_id": ID, "right_id": ID, "score": pa.float32(), "rank": pa.int16()}
    drops = ("id", "embedding", "row")
    resource = GPU
    keeps_rows = False

    def setup(self) -> None:
        right_ids(self.right_dir)
        if not self.ann_path:
            right_vectors(self.right_dir, _device())

    def counts(self, frame: pd.DataFrame) -> dict[str, int]:
        return {"matches": len(frame), **({"kept_from_previous": frame.attrs["kept"]} if self.previous is not None else {})}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        ids = pa.array(frame["id"])
        vectors, has_vector = vector_matrix(pa.array(frame["embedding"]))
        searched, reused = np.arange(len(frame)), None
        if self.previous is not None:
            same, reused = self.previous.reusable(ids, vectors, has_vector)
            searched = np.flatnonzero(~same)
        first_row = int(frame["row"].iloc[0]) if len(frame) else 0
        scores, where = self._search(vectors[searched], first_row)
        if self.specs:
            left_specs = specs_of(self.specs[0])[first_row : first_row + len(frame)]
            scores, where = rerank_by_specs(scores, where, [left_specs[i] for i in searched], specs_of(self.specs[1]), self.top_k)
        keep = (where >= 0) & has_vector[searched][:, None]
        if self.min_score is not None:
            keep &= scores >= self.min_score
        rows, ranks = np.nonzero(keep)
        right = right_ids(self.right_dir).take(pa.array(where[rows, ranks]))
        table = pa.table({"left_id": ids.take(pa.array(searched[rows])), "right_id": right,
                          "score": pa.array(scores[rows, ranks].astype(np.float32)), "rank": pa.array((ranks + 1).astype(np.int16)),
                          "position": pa.array(searched[rows].astype(np.int64))})
        if reused is not None:
            table = pa.concat_tables([table, reused.cast(table.schema)]).sort_by([("position", "ascending"), ("rank", "ascending")])
        matches = table.drop_columns(["position"]).to_pandas()
        matches.attrs["kept"] = len(frame) - len(searched)  # left rows answered by ``previous``, for counts()
        return matches

    def _search(self, vectors: np.ndarray, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and right rows of the best candidates of each of ``vectors``, best first."""
        import torch

        from kbatch.vectors.topk import topk_blockwise

        if self.threads:
            torch.set_num_threads(self.threads)
        candidates = self.top_k * SPEC_CANDIDATES if self.specs else self.top_k
        self_offset = first_row if self.self_match else None
        if self.ann_path:
            from kbatch.vectors.ann import search

            return search(self.ann_path, vectors, candidates, self_offset, self.threads)
        right, valid = right_vectors(self.right_dir, _device())
        scores, where = topk_blockwise(torch.from_numpy(vectors).to(right.device), right, candidates, valid=valid, self_offset=self_offset)
        return scores.cpu().numpy(), where.cpu().numpy()


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@worker_cache(1)
def right_ids(directory: str) -> pa.Array:
    """The right side's ids, once per worker (all an approximate search needs besides its index)."""
    return read_vectors(directory, ["id"]).column("id").combine_chunks()


@worker_cache(1)
def right_vectors(directory: str, device: str):
    """The right side's vectors and has-vector mask as tensors on ``device``, once per worker."""
    import torch

    matrix, valid = vector_matrix(read_vectors(directory, ["embedding"]).column("embedding").combine_chunks())
    return torch.from_numpy(matrix).to(device), torch.from_numpy(valid).to(device)


@worker_cache(2)
def specs_of(path: str) -> list[frozenset[str]]:
    """A side's spec tokens, once per worker."""
    return [frozenset(s) for s in storage.read_table(path, ["specs"]).column("specs").to_pylist()]


def rerank_by_specs(
    scores: np.ndarray, where: np.ndarray, left_specs: Sequence[frozenset[str]], right_specs: Sequence[frozenset[str]], top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lower each candidate's score by :data:`SPEC_PENALTY` per conflicting spec; keep the best ``top_k``."""
    from kbatch.analyzers.specs import spec_conflicts

    conflicts = np.zeros(scores.shape, dtype=np.float32)
    for i, j in zip(*np.nonzero(where >= 0), strict=True):
        conflicts[i, j] = spec_conflicts(left_specs[i], right_specs[where[i, j]])
    adjusted = scores - SPEC_PENALTY * conflicts
    order = np.argsort(-adjusted, axis=1, kind="stable")[:, :top_k]
    return np.take_along_axis(adjusted, order, axis=1), np.take_along_axis(where, order, axis=1)
