"""Morphemes that are never a keyword, whatever their counts: one rule for ``topics`` and ``keywords``.

MeCab-ko tags a lone jamo as a noun (ㄷ in ``ㄷㄷ`` is NNG) and runs of jamo as unknown
(ㅋㅋ, ㅠㅠ); every analyzer's unknown tag is unified to ``NA``. Neither names anything.
Whether a one-syllable noun is a keyword depends on how often it occurs, which only the
caller knows (:func:`kbatch.topicmodel.summary.keyword_terms`).
"""

from __future__ import annotations

import re

# The unified tag of a morpheme the analyzer did not know (kbatch.analyzers.tags).
UNKNOWN = "NA"
# Hangul Jamo (U+1100-U+11FF) and Hangul Compatibility Jamo (U+3131-U+318E) only.
_JAMO_ONLY = re.compile("[\u1100-\u11ff\u3131-\u318e]+")


def is_jamo_only(token: str) -> bool:
    """True for ``ㄷ``, ``ㅋㅋ``, ``ㅠㅠ``: letters of a syllable, not a word."""
    return _JAMO_ONLY.fullmatch(token) is not None


def is_noise(token: str, tag: str) -> bool:
    """True when the morpheme ``token`` tagged ``tag`` (unified) can never be a keyword."""
    return tag == UNKNOWN or is_jamo_only(token)
