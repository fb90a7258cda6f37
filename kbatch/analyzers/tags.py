"""One Sejong-style tag set for every analyzer, and what ``--pos`` selects from it.

MeCab-ko and Kiwi already speak (nearly) the Sejong tag set; Okt, Komoran, Kkma and
Hannanum each have their own. Mapping all of them to one set means ``--pos nouns`` keeps
the same kind of morpheme whichever analyzer produced it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from kbatch.errors import InputError

# The unified set: the Sejong tags MeCab-ko uses, NA for anything unknown.
TAGS = frozenset(
    (
        "NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "VX", "VCP", "VCN", "MM", "MAG", "MAJ", "IC",
        "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC", "EP", "EF", "EC", "ETN", "ETM",
        "XPN", "XSN", "XSV", "XSA", "XR", "SF", "SE", "SSO", "SSC", "SC", "SY", "SL", "SH", "SN", "NA",
    )
)

NOUNS = frozenset({"NNG", "NNP", "NNB", "NR", "NP"})
# Morphemes that carry meaning on their own: nouns without bound nouns and pronouns,
# verb and adjective stems, general adverbs, roots, foreign words, hanja and numbers.
CONTENT = frozenset({"NNG", "NNP", "NR", "VV", "VA", "MAG", "XR", "SL", "SH", "SN"})
POS_GROUPS = {"nouns": NOUNS, "content": CONTENT, "all": TAGS}

_SYMBOLS = {"SP": "SC", "SS": "SY", "SO": "SY", "SW": "SY", "SB": "SY", "UN": "NA"}

# Per analyzer: its tag -> unified tag. Tags already in TAGS and absent here map to themselves.
TAG_MAPS: dict[str, dict[str, str]] = {
    "mecab": {"NNBC": "NNB", "UNKNOWN": "NA"},
    "kiwi": {
        **_SYMBOLS,
        "XSM": "XSA",
        "W_URL": "SL",
        "W_EMAIL": "SL",
        "W_MENTION": "SL",
        "W_HASHTAG": "NNP",
        "W_SERIAL": "SN",
        "W_EMOJI": "SY",
        **{f"USER{i}": "NNP" for i in range(5)},
    },
    "okt": {
        "Noun": "NNG",
        "Verb": "VV",
        "Adjective": "VA",
        "Adverb": "MAG",
        "Josa": "JX",
        "Eomi": "EF",
        "PreEomi": "EP",
        "Conjunction": "MAJ",
        "Determiner": "MM",
        "Modifier": "MM",
        "Exclamation": "IC",
        "KoreanParticle": "IC",
        "Punctuation": "SF",
        "Foreign": "SH",
        "Alpha": "SL",
        "Number": "SN",
        "Hashtag": "NNP",
        "ScreenName": "SL",
        "Email": "SL",
        "URL": "SL",
        "CashTag": "SL",
        "Suffix": "XSN",
        "VerbPrefix": "XPN",
        "Unknown": "NA",
    },
    "komoran": {**_SYMBOLS, "NF": "NNG", "NV": "VV"},
    "kkma": {
        **_SYMBOLS,
        "NNM": "NNB",
        "VXV": "VX",
        "VXA": "VX",
        "MDT": "MM",
        "MDN": "MM",
        "MAC": "MAJ",
        "JKM": "JKB",
        "JKI": "JKV",
        **dict.fromkeys(("EPH", "EPT", "EPP"), "EP"),
        **dict.fromkeys(("EFN", "EFQ", "EFO", "EFA", "EFI", "EFR"), "EF"),
        **dict.fromkeys(("ECE", "ECD", "ECS"), "EC"),
        "ETD": "ETM",
        "XPV": "XPN",
        "OL": "SL",
        "OH": "SH",
        "ON": "SN",
    },
    # KoNLPy's 22-tag Hannanum set; its SL/SR are brackets, F is a foreign word.
    "hannanum": {
        "NC": "NNG",
        "NQ": "NNP",
        "NB": "NNB",
        "NN": "NR",
        "PV": "VV",
        "PA": "VA",
        "PX": "VX",
        "MA": "MAG",
        "II": "IC",
        "JC": "JKB",
        "JP": "VCP",
        "ET": "ETM",
        "XP": "XPN",
        "XS": "XSN",
        "SP": "SC",
        "SL": "SSO",
        "SR": "SSC",
        "SD": "SY",
        "SU": "SY",
        "F": "SL",
    },
}


def unify_tag(analyzer: str, tag: str) -> str:
    """The unified tag for ``tag`` as ``analyzer`` writes it (Kiwi's ``VV-R`` is ``VV``)."""
    mapped = TAG_MAPS[analyzer].get(tag)
    if mapped is not None:
        return mapped
    if tag in TAGS:
        return tag
    base = tag.split("-", 1)[0]
    return base if base in TAGS else "NA"


def parse_pos(spec: str) -> frozenset[str]:
    """``nouns``, ``content``, ``all`` or a comma list of unified tags -> the tags to keep."""
    spec = spec.strip()
    if spec in POS_GROUPS:
        return POS_GROUPS[spec]
    given = [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in given if t.upper() not in TAGS]
    if not given or unknown:
        raise InputError(
            f"`pos`: unknown tag(s) {', '.join(unknown) or repr(spec)}; use nouns, content, all "
            f"or tags from {' '.join(sorted(TAGS))}"
        )
    return frozenset(t.upper() for t in given)


def unify_tags(analyzer: str, tags: pa.Array) -> pa.Array:
    """Vectorized :func:`unify_tag`: maps each distinct tag once, then takes."""
    encoded = pc.dictionary_encode(tags)
    mapped = pa.array([unify_tag(analyzer, t) for t in encoded.dictionary.to_pylist()], pa.string())
    return mapped.take(encoded.indices)
