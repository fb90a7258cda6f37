"""Exact top-k inner products, block by block, so memory stays bounded.

A left block is scored against the right matrix one block of rows at a time; each
block's top-k is merged into a running top-k. The largest object is one block of
scores (``left_rows × block_rows`` floats), never the full ``left × right`` matrix.
"""

from __future__ import annotations

import torch

# Right rows per block: a 4,096 × 8,192 float32 score block is 128 MiB.
BLOCK_ROWS = 8192


def topk_blockwise(
    left: torch.Tensor,
    right: torch.Tensor,
    k: int,
    *,
    self_offset: int | None = None,
    valid: torch.Tensor | None = None,
    block_rows: int = BLOCK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` scores of ``left @ right.T`` per left row, best first, and the right indices.

    ``self_offset``: when left is rows ``self_offset …`` of right itself, a row never
    matches itself. ``valid``: a boolean mask of right rows that may match (others,
    e.g. rows without a vector, never do). Missing places score ``-inf`` with index -1.
    """
    n = left.shape[0]
    k = min(k, right.shape[0])
    best = torch.full((n, k), float("-inf"), dtype=left.dtype, device=left.device)
    where = torch.full((n, k), -1, dtype=torch.long, device=left.device)
    rows = torch.arange(n, device=left.device)
    for start in range(0, right.shape[0], block_rows):
        block = right[start : start + block_rows]
        scores = left @ block.T
        if valid is not None:
            scores[:, ~valid[start : start + block_rows]] = float("-inf")
        if self_offset is not None:
            column = rows + self_offset - start
            inside = (column >= 0) & (column < block.shape[0])
            scores[rows[inside], column[inside]] = float("-inf")
        values, indices = torch.topk(scores, min(k, block.shape[0]), dim=1)
        merged_values, order = torch.topk(torch.cat([best, values], dim=1), k, dim=1)
        where = torch.gather(torch.cat([where, indices + start], dim=1), 1, order)
        best = merged_values
    where[torch.isinf(best)] = -1
    return best, where
