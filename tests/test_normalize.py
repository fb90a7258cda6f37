import unicodedata

import pandas as pd

from kbatch.stages import NormalizeText


def normalize(*texts):
    return NormalizeText()(pd.DataFrame({"text": list(texts)}))


def test_decomposed_hangul_is_composed():
    out = normalize(unicodedata.normalize("NFD", "배송 빠르고 좋아요"))
    assert out.loc[0, "text"] == "배송 빠르고 좋아요"
    assert len(out.loc[0, "text"]) == 10  # composed syllables, not jamo


def test_control_and_zero_width_characters_are_removed_and_spaces_collapsed():
    out = normalize("가성비\u200b 최고\x00!!\t\n  재구매\u3000의사 있음 ")
    assert out.loc[0, "text"] == "가성비 최고!! 재구매 의사 있음"


def test_null_and_empty_rows_are_kept_with_a_reason():
    out = normalize("좋아요", None, "", "  \t ", "\u200b\x07")
    assert list(out["skip_reason"]) == [None, "null_text", "empty_text", "empty_text", "empty_text"]
    assert len(out) == 5


def test_missing_column_is_named():
    import pytest

    from kbatch.errors import InputError

    with pytest.raises(InputError, match="needs column"):
        NormalizeText("title")(pd.DataFrame({"text": ["x"]}))
