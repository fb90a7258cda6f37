"""``Embed``: the stages that turn text into vectors, as one composite.

Every command that embeds text (embed, sts, keywords, topics, match) runs the same
three stages: normalize and subword-tokenize on CPU workers, encode on GPU workers when
there are any. The runner expands the composite, so the CPU/GPU split is the stages'
declared resources, not the command's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from kbatch.stages.base import Stage
from kbatch.stages.encode import Encode
from kbatch.stages.normalize import NormalizeText
from kbatch.stages.subword import SubwordTokenize
from kbatch.vectors.columns import vector_matrix


@dataclass(frozen=True)
class Embed(Stage):
    """Normalize (unless the text already is) → subword ids (CPU) → encode (GPU)."""

    subword: SubwordTokenize
    encode: Encode
    normalize_text: bool = True

    def expand(self) -> list[Stage]:
        return [*([NormalizeText()] if self.normalize_text else []), self.subword, self.encode]

    def strings(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of short strings (candidate words) on a worker, through the same stages as documents."""
        frame = pd.DataFrame({"id": np.arange(len(texts)), "text": list(texts), "skip_reason": [None] * len(texts)})
        return vector_matrix(pa.array(self.encode(self.subword(frame))["embedding"]))[0]
