"""Analyzers in this process: the tag set, stems, user words, stopwords and hostile text.

The JVM analyzers run only inside spawned Dask workers (tests/test_tokenize.py).
"""

import time

import pandas as pd
import pytest

from kbatch.analyzers import AnalyzerSpec, UserWord, load_analyzer
from kbatch.analyzers.stopwords import load_stopwords
from kbatch.analyzers.tags import NOUNS, parse_pos, unify_tag
from kbatch.analyzers.userdict import read_user_dict
from kbatch.errors import AnalyzerError, InputError
from kbatch.stages import MorphAnalyze, NormalizeText
from kbatch.stages.morph import MAX_CHUNK_CHARS, split_chunks

IN_PROCESS = ["mecab", "kiwi"]


def morphemes(name: str, text: str, user_words=()) -> list[str]:
    analysis = load_analyzer(AnalyzerSpec(name, tuple(user_words), threads=1)).analyze([text])
    return [f"{form}/{tag}" for form, tag in zip(analysis.morphemes.forms.to_pylist(), analysis.morphemes.tags.to_pylist(), strict=True)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mecab", "아버지/NNG 가/JKS 방/NNG 에/JKB 들어가/VV 시/EP ㄴ다/EC"),
        ("kiwi", "아버지/NNG 가/JKS 방/NNG 에/JKB 들어가/VV 시/EP ᆫ다/EC"),
    ],
)
def test_father_enters_the_room_not_the_bag(name, expected):
    assert " ".join(morphemes(name, "아버지가방에들어가신다")) == expected


@pytest.mark.parametrize("name", IN_PROCESS)
def test_verbs_and_adjectives_come_out_as_stems(name):
    assert morphemes(name, "예뻤어요")[:2] == ["예쁘/VA", "었/EP"]
    assert morphemes(name, "먹었다")[0] == "먹/VV"


def test_every_analyzer_speaks_one_tag_set():
    assert unify_tag("okt", "Noun") == "NNG" and unify_tag("okt", "Josa") == "JX"
    assert unify_tag("kkma", "JKM") == "JKB" and unify_tag("kkma", "EFN") == "EF"
    assert unify_tag("hannanum", "NC") == "NNG" and unify_tag("hannanum", "SL") == "SSO"
    assert unify_tag("kiwi", "VV-R") == "VV" and unify_tag("kiwi", "W_URL") == "SL"
    assert unify_tag("mecab", "NNBC") == "NNB" and unify_tag("komoran", "NA") == "NA"
    assert unify_tag("okt", "SomethingNew") == "NA"


def test_pos_accepts_groups_and_tag_lists():
    assert parse_pos("nouns") == NOUNS
    assert parse_pos("nng, nnp") == {"NNG", "NNP"}
    with pytest.raises(InputError, match=r"unknown tag\(s\) Noun"):
        parse_pos("NNG,Noun")


@pytest.mark.parametrize("name", IN_PROCESS)
def test_user_words_stay_whole(tmp_path, name):
    assert "노이즈캔슬링/NNG" not in morphemes(name, "노이즈캔슬링이 좋아요")
    words = tmp_path / "words.txt"
    words.write_text("# brand terms\n노이즈캔슬링 NNG\n갤럭시버즈\n", encoding="utf-8")
    user_words = read_user_dict(words)
    assert user_words == (UserWord("노이즈캔슬링", "NNG"), UserWord("갤럭시버즈", "NNP"))
    assert morphemes(name, "노이즈캔슬링이 좋아요", user_words)[0] == "노이즈캔슬링/NNG"


def test_bad_user_dictionary_names_the_line(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("좋은말\n나쁜말 JKS\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"words.txt:2: tag JKS cannot be added"):
        read_user_dict(words)
    with pytest.raises(AnalyzerError, match="cannot take a user dictionary"):
        AnalyzerSpec("kkma", (UserWord("노이즈캔슬링"),)).check()


def test_stopwords_ship_with_kbatch_and_can_be_replaced(tmp_path):
    assert {"것", "수", "등"} <= load_stopwords()
    mine = tmp_path / "stop.txt"
    mine.write_text("영화\n# a comment\n", encoding="utf-8")
    assert load_stopwords(mine) == {"영화"}
    assert load_stopwords("none") == frozenset()


def test_long_text_is_cut_at_sentence_ends():
    text = "좋은 영화였습니다. " * 30_000
    chunks = split_chunks(text)
    assert max(map(len, chunks)) <= MAX_CHUNK_CHARS
    assert all(chunk.endswith(".") for chunk in chunks)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


HOSTILE = pd.Series(
    [None, "", " \t\n ", "\x00", "가방\x00에 들어가", "😀🎉", "\ud800", "iPhone15 Pro 케이스 ケース 手机壳",
     "좋은 영화였습니다. " * 20_000],
    dtype=object,
)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_hostile_text_neither_crashes_nor_hangs(name):
    frame = NormalizeText()(pd.DataFrame({"id": range(len(HOSTILE)), "text": HOSTILE}))
    start = time.perf_counter()
    out = MorphAnalyze(AnalyzerSpec(name, threads=1))(frame)
    assert time.perf_counter() - start < 60
    nothing_left = [0, 1, 2, 3, 6]  # None, empty, whitespace, NUL, a lone surrogate
    assert out["skip_reason"].notna().tolist() == [i in nothing_left for i in range(len(HOSTILE))]
    assert out["tokens"].isna().tolist() == [i in nothing_left for i in range(len(HOSTILE))]
    assert list(out["tokens"][4])[:2] == ["가방", "에"]
    assert "iPhone" in list(out["tokens"][7]) and "케이스" in list(out["tokens"][7])
    assert len(out["tokens"][8]) > 100_000
    assert out["analyzer_error"].isna().all()


def test_nouns_without_stopwords():
    frame = NormalizeText()(pd.DataFrame({"id": [1], "text": ["이 영화는 배우들의 연기가 좋은 것 같아요"]}))
    out = MorphAnalyze(AnalyzerSpec("mecab"), parse_pos("nouns"), load_stopwords())(frame)
    assert list(out["tokens"][0]) == ["영화", "배우", "연기"]
    assert set(out["tags"][0]) == {"NNG"}


def test_a_missing_analyzer_or_java_says_what_to_install(monkeypatch):
    import kbatch.analyzers

    monkeypatch.setattr(kbatch.analyzers.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AnalyzerError, match="pip install kiwipiepy"):
        AnalyzerSpec("kiwi").check()
    monkeypatch.undo()
    monkeypatch.setattr(kbatch.analyzers, "java_available", lambda: False)
    with pytest.raises(AnalyzerError, match="runs on Java: install a JDK"):
        AnalyzerSpec("okt").check()
