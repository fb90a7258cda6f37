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
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.stages.base import Stage

# C0/C1 controls except tab/newline/CR (folded as spaces), zero-width marks, BOM (RE2 syntax).
_INVISIBLE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\x{200b}\x{200c}\x{200e}\x{200f}\x{2060}\x{feff}]"
_SPACES = r"[\s\p{Z}]+"
_SURROGATES = re.compile("[\ud800-\udfff]")

NULL_TEXT = "null_text"
EMPTY_TEXT = "empty_text"


@dataclass(frozen=True)
class NormalizeText(Stage):
    """NFC, invisible characters removed, whitespace collapsed; adds ``skip_reason``.

    Runs as Arrow compute kernels over the whole column: no Python call per row. A row
    already skipped for another reason keeps that reason.
    """

    column: str = "text"

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def outputs(self) -> dict[str, pa.DataType]:
        return {self.column: pa.string(), "skip_reason": pa.string()}

    def process(self, frame: pd.DataFrame) -> pd.DataFrame:
        text = _arrow_text(frame[self.column])
        text = pc.utf8_normalize(text, "NFC")
        text = pc.replace_substring_regex(text, _INVISIBLE, "")
        text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, _SPACES, " "))
        is_null = text.is_null().to_numpy(zero_copy_only=False)
        reason = np.full(len(frame), None, dtype=object)
        reason[pc.equal(text, "").fill_null(False).to_numpy(zero_copy_only=False)] = EMPTY_TEXT
        reason[is_null] = NULL_TEXT
        out = frame.copy(deep=False)
        out[self.column] = text.to_pandas().set_axis(frame.index)
        if "skip_reason" in frame:
            earlier = frame["skip_reason"].to_numpy(dtype=object)
            reason = np.where(pd.notna(earlier), earlier, reason)
        out["skip_reason"] = pd.Series(reason, index=frame.index, dtype=object)
        return out


def _arrow_text(column: pd.Series) -> pa.Array:
    """The column as Arrow strings; non-strings become their ``str``, lone surrogates are dropped."""
    try:
        return pa.array(column, pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        values = column.astype(object)
        cleaned = [None if pd.isna(v) else _SURROGATES.sub("", str(v)) for v in values]
        return pa.array(cleaned, pa.large_string())
