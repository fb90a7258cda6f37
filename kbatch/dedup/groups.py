"""Rows into groups on the client: exact copies, then the forest cut at the threshold.

Global rows are the earlier nights' kept rows first (``0 … before-1``), then tonight's. A
tonight row that repeats an earlier row's normalized text joins that row's group whatever the
threshold; every other row is grouped by the forest. Only groups with a row of tonight's count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbatch.dedup.representatives import Members


@dataclass(frozen=True)
class Grouping:
    """Each global row's group (-1: none) and the grouped rows that may represent a group."""

    group: np.ndarray
    members: Members


def group_rows(first: np.ndarray, labels: np.ndarray | None, before: int) -> Grouping:
    """Groups of two or more rows with at least one of tonight's; ``first``: each row's first
    exact copy, ``labels``: each row's forest component (``None``: exact pass only)."""
    label = first if labels is None else labels[first]
    size = np.bincount(label, minlength=len(label))
    tonight = np.bincount(label[before:], minlength=len(label))
    grouped = (size[label] >= 2) & (tonight[label] >= 1)
    names, group = np.unique(label[grouped], return_inverse=True)
    out = np.full(len(label), -1, dtype=np.int64)
    out[grouped] = group
    candidates = np.flatnonzero(grouped & (first == np.arange(len(first))))  # one row per exact text
    return Grouping(out, Members(candidates, out[candidates], len(names)))


def numbered(representative: np.ndarray) -> np.ndarray:
    """Group ids in the order of their representatives' rows (stable across reruns)."""
    order = np.argsort(representative, kind="stable")
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.arange(len(order))
    return ids
