"""Rows into groups on the client: the components of the forest and the exact copies' edges.

Global rows are the earlier nights' kept rows first (``0 … before-1``), then tonight's. A row
whose dedup key repeats an earlier row's joins that row's group whatever the threshold; the
forest joins the rest. Only groups with a row of tonight's count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kbatch.duplicates.representatives import Members


@dataclass(frozen=True)
class Grouping:
    """Each global row's group (-1: none) and the grouped rows that may represent a group."""

    group: np.ndarray
    members: Members


def group_rows(labels: np.ndarray, same_text: np.ndarray, before: int) -> Grouping:
    """Groups of two or more rows with at least one of tonight's; ``labels``: each row's component
    (forest and exact copies), ``same_text``: each row's first row with the same normalized text
    (which has the same vector, so only that one may represent a group)."""
    size = np.bincount(labels, minlength=len(labels))
    tonight = np.bincount(labels[before:], minlength=len(labels))
    grouped = (size[labels] >= 2) & (tonight[labels] >= 1)
    names, group = np.unique(labels[grouped], return_inverse=True)
    out = np.full(len(labels), -1, dtype=np.int64)
    out[grouped] = group
    candidates = np.flatnonzero(grouped & (same_text == np.arange(len(same_text))))
    return Grouping(out, Members(candidates, out[candidates], len(names)))


def numbered(representative: np.ndarray) -> np.ndarray:
    """Group ids in the order of their representatives' rows (stable across reruns)."""
    order = np.argsort(representative, kind="stable")
    ids = np.empty(len(order), dtype=np.int64)
    ids[order] = np.arange(len(order))
    return ids
