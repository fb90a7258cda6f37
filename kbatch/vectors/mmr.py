"""Maximal Marginal Relevance: pick words close to a target vector but not to each other.

Used by ``keywords`` (words of a document) and ``topics`` (words of a topic), with
KeyBERT's formula so that a ``--diversity`` means the same as there.
"""

from __future__ import annotations

import numpy as np


def mmr(target: np.ndarray, candidates: np.ndarray, top_n: int, diversity: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of up to ``top_n`` rows of ``candidates`` (unit vectors), in order of choice,
    and their cosine to ``target``.

    Each step takes the candidate maximizing ``(1 - diversity) * cos(candidate, target)
    - diversity * max cos(candidate, chosen)``; ``diversity=0`` is plain ranking by cosine.
    """
    relevance = candidates @ target
    if diversity <= 0 or len(candidates) <= 1:
        order = np.argsort(-relevance, kind="stable")[:top_n]
        return order, relevance[order]
    chosen = [int(np.argmax(relevance))]
    redundancy = candidates @ candidates[chosen[0]]
    remaining = np.ones(len(candidates), dtype=bool)
    remaining[chosen[0]] = False
    while len(chosen) < min(top_n, len(candidates)):
        score = np.where(remaining, (1 - diversity) * relevance - diversity * redundancy, -np.inf)
        best = int(np.argmax(score))
        chosen.append(best)
        remaining[best] = False
        np.maximum(redundancy, candidates @ candidates[best], out=redundancy)
    order = np.asarray(chosen)
    return order, relevance[order]
