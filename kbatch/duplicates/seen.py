"""Which texts a model can see: a text made only of pieces its tokenizer does not know says
nothing in its vector.

use-m3 turns ``굿``, ``짱``, ``ㅋ`` and ``ㅠㅠ`` alike into one unknown piece, so their vectors
are the same and any threshold would join a cheer, a laugh and a sob. Such rows take part in
the exact pass only. A text is seen when at least one of its pieces is known (not the
unknown piece, not one of the special pieces a tokenizer adds to every text) and holds a
letter or digit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kbatch.models.resolve import ModelSpec
from kbatch.stages.subword import load_tokenizer


def seen_by_model(texts: Sequence[str], spec: ModelSpec) -> np.ndarray:
    """One flag per text: whether the model's tokenizer knows a word piece of it."""
    tokenizer = load_tokenizer(spec.path, spec.max_seq_length, spec.trust_remote_code)
    ids, _ = tokenizer.encode_batch(list(texts))
    specials = set(tokenizer.encode_batch([""])[0][0]) | {tokenizer.unk_token_id}
    seen = np.zeros(len(ids), dtype=bool)
    for row, pieces in enumerate(ids):
        known = [piece for piece in pieces if piece not in specials]
        seen[row] = any(any(ch.isalnum() for ch in token) for token in tokenizer.convert_ids_to_tokens(known))
    return seen
