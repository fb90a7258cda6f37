"""One row kept per group, and every member's cosine to it.

Rules (``keep``): ``centroid`` — the member closest to the group's mean vector, the most
typical wording; ``longest`` — the longest text, the one that says most;
``earliest`` — the lowest row number, which is also the earliest night's row across runs.
A row kept on an earlier night always wins over tonight's rows, so its decision never changes.
Vectors are read again on the workers (a group's members may sit in any block); the client
ships only the sorted member rows and receives per-group sums and per-row cosines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from kbatch.duplicates.buckets import Block, read_block

KEEP_RULES = ("centroid", "longest", "earliest")


@dataclass(frozen=True)
class Members:
    """Grouped rows, sorted, and the group of each."""

    rows: np.ndarray
    groups: np.ndarray
    n_groups: int

    def of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``rows`` are members (a mask) and their groups."""
        at = np.clip(np.searchsorted(self.rows, rows), 0, max(len(self.rows) - 1, 0))
        found = (self.rows[at] == rows) if len(self.rows) else np.zeros(len(rows), dtype=bool)
        return found, self.groups[at[found]]


def group_sums(block: Block, members: Members) -> tuple[np.ndarray, np.ndarray]:
    """The groups a block's members belong to and the sums of their vectors (a task)."""
    rows, vectors = read_block(block)
    found, groups = members.of(rows)
    present, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(present), vectors.shape[1]), dtype=np.float32)
    np.add.at(sums, inverse, vectors[found])
    return present, sums


def add_sums(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    groups = np.concatenate([p[0] for p in parts])
    present, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(present), parts[0][1].shape[1]), dtype=np.float32)
    np.add.at(sums, inverse, np.concatenate([p[1] for p in parts]))
    return present, sums


def unit_group_vectors(summed: tuple[np.ndarray, np.ndarray], n_groups: int) -> np.ndarray:
    """Dense ``n_groups × dim`` unit vectors from summed ones (a group's sum of members is its
    centroid's direction; the sum of its one representative is that row's vector)."""
    present, sums = summed
    dense = np.zeros((n_groups, sums.shape[1]), dtype=np.float32)
    dense[present] = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return dense


def group_cosines(block: Block, members: Members, vectors_of_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of a block's members and its cosine to its group's vector (a task)."""
    rows, vectors = read_block(block)
    found, groups = members.of(rows)
    return rows[found], np.einsum("ij,ij->i", vectors[found], vectors_of_groups[groups]).astype(np.float32)


def choose(members: Members, score: np.ndarray, before: int) -> np.ndarray:
    """The representative row of each group: among rows kept on an earlier night (rows below
    ``before``) if the group has any, else among all, the highest ``score``, then the lowest row."""
    frame = pd.DataFrame({"group": members.groups, "row": members.rows, "earlier": members.rows < before, "score": score})
    best = frame.sort_values(["group", "earlier", "score", "row"], ascending=[True, False, False, True]).drop_duplicates("group")
    representative = np.full(members.n_groups, -1, dtype=np.int64)
    representative[best["group"].to_numpy()] = best["row"].to_numpy()
    return representative
