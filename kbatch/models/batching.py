"""Token-budget batches over ragged token ids, built with NumPy, order restored.

Rows are sorted longest first, so each batch pads only to its own longest row and an
out-of-memory batch shows up at the start of a partition, not after an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


class OutOfMemory(Exception):
    """Raised by a forward function when a batch does not fit; the batch is halved."""


def plan_batches(lengths: np.ndarray, token_budget: int, max_rows: int) -> Iterator[np.ndarray]:
    """Row indices per batch: ``rows * longest <= token_budget`` (at least one row)."""
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        size = max(1, min(max_rows, token_budget // longest))
        yield order[start : start + size]
        start += size


def pad_batch(flat: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)`` of shape ``(len(rows), longest)`` without a Python loop."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    width = max(int(lengths.max()), 1)
    positions = np.arange(width)
    mask = positions[None, :] < lengths[:, None]
    gather = np.minimum(starts[:, None] + positions[None, :], max(len(flat) - 1, 0))
    ids = np.where(mask, flat[gather] if len(flat) else pad_id, pad_id).astype(np.int64)
    return ids, mask.astype(np.int64)


def encode_ragged(
    forward: Callable[[np.ndarray, np.ndarray], np.ndarray],
    flat: np.ndarray,
    offsets: np.ndarray,
    dim: int,
    *,
    token_budget: int,
    max_rows: int,
    pad_id: int = 0,
    on_halve: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed every row of a ragged id array; the result is in input order.

    ``forward`` maps padded ids and mask to ``(rows, dim)`` float32. When it raises
    :class:`OutOfMemory`, the token budget is halved and the rows not yet embedded are
    batched again (``on_halve`` is told the new budget).
    """
    lengths = np.diff(offsets)
    out = np.empty((len(lengths), dim), dtype=np.float32)
    pending = _batches(np.arange(len(lengths)), lengths, token_budget, max_rows)
    while pending:
        rows = pending.pop()
        try:
            out[rows] = forward(*pad_batch(flat, offsets, rows, pad_id))
        except OutOfMemory:
            if len(rows) == 1:
                raise
            token_budget = max(1, token_budget // 2)
            if on_halve is not None:
                on_halve(token_budget)
            remaining = np.concatenate([rows, *reversed(pending)])
            pending = _batches(remaining, lengths, token_budget, max_rows)
    return out


def _batches(rows: np.ndarray, lengths: np.ndarray, token_budget: int, max_rows: int) -> list[np.ndarray]:
    """Batches of ``rows`` as a stack: the next batch to run is last."""
    planned = [rows[b] for b in plan_batches(lengths[rows], token_budget, max_rows)]
    planned.reverse()
    return planned
