"""Normalize text before tokenization, and say why a row cannot be embedded.

Korean text from crawls and seller feeds arrives in NFD (decomposed jamo), with control
characters, zero-width marks and runs of odd spaces; all of these change token ids
without changing meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kbatch.stages.base import Stage

# C0/C1 controls except tab/newline (folded as spaces), zero-width marks, BOM, surrogates.
_INVISIBLE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200c\u200e\u200f\u2060\ufeff\ud800-\udfff]"
_SPACES = r"\s+"
_SURROGATES = re.compile("[\ud800-\udfff]")

NULL_TEXT = "null_text"
EMPTY_TEXT = "empty_text"


@dataclass(frozen=True)
class NormalizeText(Stage):
    """NFC, invisible characters removed, whitespace collapsed; adds ``skip_reason``."""

    column: str = "text"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.column,)

    adds = ("skip_reason",)

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        raw = frame[self.column].astype(object)
        is_null = raw.isna()
        try:
            text = raw.where(~is_null, "").astype(str)
        except UnicodeEncodeError:  # lone surrogates (e.g. from surrogateescape) cannot become UTF-8
            text = raw.where(~is_null, "").map(lambda value: _SURROGATES.sub("", str(value))).astype(str)
        text = text.str.normalize("NFC").str.replace(_INVISIBLE, "", regex=True)
        text = text.str.replace(_SPACES, " ", regex=True).str.strip()
        reason = np.full(len(frame), None, dtype=object)
        reason[(text.eq("") & ~is_null).to_numpy()] = EMPTY_TEXT
        reason[is_null.to_numpy()] = NULL_TEXT
        out = frame.copy()
        out[self.column] = text.where(~is_null, None)
        out["skip_reason"] = pd.Series(reason, index=frame.index, dtype=object)
        return out
