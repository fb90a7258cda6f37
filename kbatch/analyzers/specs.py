"""Spec tokens of product titles: the attributes that tell near-identical products apart.

Seller titles of different products often share every word but one spec (256GB or
512GB, S24 or S23, 블랙 or 화이트), so text similarity alone matches an offer to the
wrong product. :func:`extract_specs` reduces each title to ``key:value`` tokens with the
spellings unified (256 GB, 256기가, 256G → ``capacity:256gb``; 검정, Black →
``color:black``) and :func:`spec_conflicts` counts the keys on which two titles
disagree, so a matcher can veto or penalize a candidate pair.

Numbers with units, model codes and series numbers are read from the text with regular
expressions: MeCab splits S24 into S/SL 24/SN and 256기가 into 256/SN 기/NNG 가/JKS, and
the adjacency is lost. Colors and tiers (프로, 울트라) are read from MeCab morphemes, which
find them in unspaced text (티타늄블랙, 블랙색상) and keep words like 블루투스 or 레드미 whole.

>>> extract_specs(["삼성 갤럭시 S24 울트라 256GB 블랙"]) == [
...     frozenset({"model:s24", "tier:ultra", "capacity:256gb", "color:black"})]
True
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers import AnalyzerSpec, load_analyzer
from kbatch.analyzers.userdict import UserWord

_COLORS = {
    "black": "블랙 검정 검은색 흑색 black",
    "white": "화이트 흰색 하얀색 백색 white",
    "silver": "실버 은색 silver",
    "gray": "그레이 회색 gray grey",
    "graphite": "그라파이트 graphite",
    "blue": "블루 파랑 파란색 청색 스카이블루 하늘색 blue",
    "navy": "네이비 남색 navy",
    "red": "레드 빨강 빨간색 적색 red",
    "pink": "핑크 분홍 분홍색 pink",
    "green": "그린 초록 초록색 녹색 연두색 green",
    "mint": "민트 mint",
    "gold": "골드 금색 gold",
    "purple": "퍼플 보라 보라색 바이올렛 purple violet",
    "lavender": "라벤더 lavender",
    "beige": "베이지 beige",
    "yellow": "옐로우 노랑 노란색 yellow",
    "orange": "오렌지 주황 주황색 orange",
    "brown": "갈색 brown",
    "khaki": "카키 khaki",
    "midnight": "미드나이트 미드나잇 midnight",
    "starlight": "스타라이트 starlight",
    "titanium": "티타늄 titanium",
}
# Adjective stems as MeCab expands them (검은 → 검/VA 은/ETM); 그린 alone is read as 그리/VV.
_COLOR_STEMS = {("검", "VA"): "black", ("하얗", "VA"): "white", ("희", "VA"): "white", ("빨갛", "VA"): "red",
                ("파랗", "VA"): "blue", ("노랗", "VA"): "yellow", ("그리", "VV"): "green"}
# Titanium names a finish: 블랙 티타늄 and 내추럴 티타늄 differ by their other color word.
_WEAK_COLORS = frozenset({"titanium"})
_TIERS = {"pro": "프로 pro", "max": "맥스 max", "ultra": "울트라 ultra", "plus": "플러스 plus", "mini": "미니 mini", "fe": "fe"}
_TIER_ORDER = tuple(_TIERS)
_WORDS = {form: ("color", value) for value, forms in _COLORS.items() for form in forms.split()} | {
    form: ("tier", value) for value, forms in _TIERS.items() for form in forms.split()
}
# MeCab splits color words by context (배송 블루 → 블/NNG 루/JKB, 보라 → 보/VV 라/EC), so they
# are user words, kept whole; so are words with a color inside that name no color.
_NOT_COLORS = "화이트닝 화이트보드 레드미 골드스타 블랙박스 블랙프라이데이 블루투스 핑크퐁"
_USER_WORDS = sorted({form for forms in _COLORS.values() for form in forms.split() if not form.isascii()} | set(_NOT_COLORS.split()))
_ANALYZER = AnalyzerSpec("mecab", user_words=tuple(UserWord(form, "NNG") for form in _USER_WORDS))

# unit spelling -> (key, base unit, factor to the base unit)
_UNITS = {
    "tb": ("capacity", "gb", 1024), "테라바이트": ("capacity", "gb", 1024), "테라": ("capacity", "gb", 1024),
    "gb": ("capacity", "gb", 1), "기가바이트": ("capacity", "gb", 1), "기가": ("capacity", "gb", 1),
    "인치": ("size", "in", 1), "inch": ("size", "in", 1), "형": ("size", "in", 1),
    "mm": ("length", "mm", 1), "cm": ("length", "mm", 10),
    "ml": ("volume", "ml", 1), "l": ("volume", "ml", 1000), "리터": ("volume", "ml", 1000),
    "kg": ("weight", "g", 1000), "킬로그램": ("weight", "g", 1000), "킬로": ("weight", "g", 1000), "키로": ("weight", "g", 1000),
    "g": ("weight", "g", 1),
}
_NUMBER = r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?"
# A unit may be followed by x (500mlx20) but no other Latin letter; the number starts a word.
_QUANTITY = re.compile(rf"(?<![A-Za-z0-9.])({_NUMBER})\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})(?![a-wyz])", re.I)
_NETWORKS = frozenset({3, 4, 5})  # 5G is a network, not five gigabytes
_CODE = re.compile(r"(?<![A-Za-z0-9-])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(\+?)")
_SHORT_MODEL = re.compile(r"[a-z]{1,2}\d{1,3}[a-z]?")  # S24, A54, V15, M3, QN90C
_WORD_NUMBER = re.compile(r"[a-z]{3,}\d{1,3}")  # iPhone15, Flip5: a series number, see _SERIES
_NOT_CODES = re.compile(r"[345]g|[48]k|x\d+")  # networks, resolutions, quantities (x2)
_SERIES_TAILS = "프로|플러스|울트라|맥스|미니|세대|pro|plus|ultra|max|mini|fe|gen"
# A number of up to three digits after a word, glued or spaced: 아이폰 15, iPhone15, 플립5, 버즈2프로.
_SERIES = re.compile(rf"([가-힣]+|(?<![A-Za-z0-9])[A-Za-z]{{3,}}) ?(\d{{1,3}})(?=$|[^\w.,+]|{_SERIES_TAILS})", re.I)
_NOT_SERIES_WORDS = ("택", "총", "약", "최대", "옵션")  # 택1 (choose one), 총 2 ...
_YEAR = re.compile(r"(?<![\w.])(20[1-3]\d)(?:년형|년|형)?(?![\w.])")  # 2024, 2024년형: read before 65형 (size)


def extract_specs(texts: list[str]) -> list[frozenset[str]]:
    """The spec tokens of each title, ``key:value``; the analyzer runs once over all titles.

    Keys: ``capacity`` (the largest storage size, 256gb, 1tb) and ``memory`` (the smaller
    ones: 8GB RAM), ``size`` (65in from 65인치, 65형, 65inch), ``length`` (mm, from mm or
    cm), ``volume`` (ml, from ml, L, 리터), ``weight`` (g, from g, kg, 키로; a bare G on a
    power of two from 8 up is storage), ``model`` (short line codes: S24, A54, V15, M3),
    ``code`` (maker part numbers: SM-S921N → sms921n, WH-1000XM5 → wh1000xm5),
    ``series`` (the number after a line name: 아이폰 15, iPhone15, 플립5 → 15, 15, 5),
    ``tier`` (pro, pro-max, ultra, plus, mini, fe), ``year`` (2024 from 2024, 2024년형) and
    ``color`` (black, white, ...).

    >>> sorted(extract_specs(["Apple iPhone15 Pro 1테라 블랙 티타늄"])[0])
    ['capacity:1tb', 'color:black', 'series:15', 'tier:pro']
    """
    texts = [unicodedata.normalize("NFKC", text) for text in texts]
    words = _analyzed_words(texts)
    return [_specs(text, words[i]) for i, text in enumerate(texts)]


def spec_conflicts(a: frozenset[str], b: frozenset[str]) -> int:
    """How many keys both titles have with no value in common; a key missing on one side is no conflict.

    >>> spec_conflicts(frozenset({"capacity:256gb", "color:black"}), frozenset({"capacity:512gb"}))
    1
    """
    values_a, values_b = _by_key(a), _by_key(b)
    return sum(values_a[key].isdisjoint(values_b[key]) for key in values_a.keys() & values_b.keys())


def _by_key(specs: Iterable[str]) -> dict[str, set[str]]:
    values: dict[str, set[str]] = defaultdict(set)
    for spec in specs:
        key, _, value = spec.partition(":")
        values[key].add(value)
    return values


def _analyzed_words(texts: list[str]) -> list[list[tuple[str, str]]]:
    """Per text, the ``(key, value)`` of each morpheme that names a color or a tier."""
    morphemes = load_analyzer(_ANALYZER).analyze(texts).morphemes
    forms = pc.utf8_lower(morphemes.forms)
    known = pc.is_in(forms, value_set=pa.array(list(_WORDS) + [stem for stem, _ in _COLOR_STEMS]))
    hits = np.flatnonzero(known.to_numpy(zero_copy_only=False))
    words: list[list[tuple[str, str]]] = [[] for _ in texts]
    tags = morphemes.tags.take(hits).to_pylist()
    for text, form, tag in zip(morphemes.text_index[hits], forms.take(hits).to_pylist(), tags, strict=True):
        if (form, tag) in _COLOR_STEMS:
            words[text].append(("color", _COLOR_STEMS[form, tag]))
        elif form in _WORDS:
            words[text].append(_WORDS[form])
    return words


def _specs(text: str, words: list[tuple[str, str]]) -> frozenset[str]:
    values: dict[str, set[str]] = defaultdict(set)
    values["year"].update(match[1] for match in _YEAR.finditer(text))
    rest = _read_quantities(_blank(_YEAR, text), values)
    _read_codes(rest, values)
    _read_series(rest, values)
    for key, value in words:
        values[key].add(value)
    _settle(values)
    return frozenset(f"{key}:{value}" for key, key_values in values.items() for value in key_values)


def _read_quantities(text: str, values: dict[str, set[str]]) -> str:
    """Add each number with a unit to ``values``; the text with those blanked out."""
    for match in _QUANTITY.finditer(text):
        number = float(match[1].replace(",", ""))
        key, unit, factor = _UNITS[match[2].lower()]
        if match[2].lower() == "g" and number in _NETWORKS:
            continue
        if match[2].lower() == "g" and number >= 8 and number.is_integer() and int(number).bit_count() == 1:
            key, unit = "capacity", "gb"
        values[key].add(_amount(number * factor, unit))
    return _blank(_QUANTITY, text)


def _blank(pattern: re.Pattern[str], text: str) -> str:
    """The text with each match of ``pattern`` replaced by spaces, so that later patterns cannot read it."""
    return pattern.sub(lambda match: " " * len(match[0]), text)


def _amount(number: float, unit: str) -> str:
    if unit == "gb" and number >= 1024 and number % 1024 == 0:
        number, unit = number / 1024, "tb"
    return f"{number:.3f}".rstrip("0").rstrip(".") + unit


def _read_codes(text: str, values: dict[str, set[str]]) -> None:
    """Latin tokens with letters and digits: short line codes (S24) and maker part numbers (SM-S921N)."""
    for match in _CODE.finditer(text):
        code = match[0].rstrip("+").replace("-", "").lower()
        if code.isalpha() or code.isdigit() or _NOT_CODES.fullmatch(code) or _WORD_NUMBER.fullmatch(code):
            continue
        values["model" if _SHORT_MODEL.fullmatch(code) else "code"].add(code)
        if match[1]:
            values["tier"].add("plus")  # S24+


def _read_series(text: str, values: dict[str, set[str]]) -> None:
    for match in _SERIES.finditer(text):
        if not match[1].endswith(_NOT_SERIES_WORDS):
            values["series"].add(str(int(match[2])))


def _settle(values: dict[str, set[str]]) -> None:
    """One tier value per title, weak colors only alone, the largest capacity as storage."""
    if values.get("tier"):
        values["tier"] = {"-".join(tier for tier in _TIER_ORDER if tier in values["tier"])}
    if values.get("color", set()) - _WEAK_COLORS:
        values["color"] -= _WEAK_COLORS
    capacities = values.get("capacity", set())
    if len(capacities) > 1:
        storage = max(capacities, key=_gigabytes)
        values["memory"] = capacities - {storage}
        values["capacity"] = {storage}


def _gigabytes(amount: str) -> float:
    return float(amount[:-2]) * (1024 if amount.endswith("tb") else 1)
