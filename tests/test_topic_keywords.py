"""Keywords without junk: never a jamo or a morpheme MeCab did not know; a one-syllable
word only when it is frequent in its topic; no word of a single document of a topic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kbatch.analyzers import AnalyzerSpec
from kbatch.analyzers.noise import UNKNOWN, is_jamo_only, is_noise
from kbatch.analyzers.tags import NOUNS, TAGS
from kbatch.commands.topics import topics
from kbatch.stages import MorphAnalyze, NormalizeText
from kbatch.stages.candidates import morpheme_ngrams
from kbatch.topicmodel.ctfidf import class_tfidf
from kbatch.topicmodel.summary import MIN_DOCUMENTS, SYLLABLE_MAX_RANK, SYLLABLE_MIN_SHARE, keyword_terms, summarize


def analyze(texts: list[str]) -> pd.DataFrame:
    """MeCab-ko's morphemes of ``texts`` with unified tags, as ``kbatch tokenize`` finds them."""
    frame = pd.DataFrame({"id": range(len(texts)), "text": texts})
    return MorphAnalyze(AnalyzerSpec(), TAGS)(NormalizeText()(frame))


def tagged(texts: list[str]) -> set[tuple[str, str]]:
    """Every (morpheme, unified tag) MeCab-ko finds in ``texts``."""
    morphemes = analyze(texts)
    return {pair for forms, tags in zip(morphemes.tokens, morphemes.tags, strict=True) for pair in zip(forms, tags, strict=True)}


@pytest.mark.parametrize("token", ["ㄷ", "ㅋㅋ", "ㅠㅠ", "ᆫ"])
def test_jamo_are_noise_whatever_their_tag(token):
    assert is_jamo_only(token) and is_noise(token, "NNG")


@pytest.mark.parametrize("token", ["구", "잇", "집", "맛", "폰", "맛집"])
def test_syllables_and_words_are_not_noise_by_themselves(token):
    assert not is_jamo_only(token) and not is_noise(token, "NNG")
    assert is_noise(token, UNKNOWN)


def test_keyword_candidates_leave_out_noise():
    morphemes = analyze(["ㄷㄷ 이 영화 ㅋㅋ 맛집 추천"]).iloc[0]
    tokens, tags = list(morphemes.tokens), list(morphemes.tags)
    assert {("ㄷ", "NNG"), ("ㅋㅋ", UNKNOWN)} <= set(zip(tokens, tags, strict=True))  # --pos nouns alone keeps ㄷ
    assert morpheme_ngrams(tokens, tags, NOUNS, frozenset(), 2) == ["영화", "맛집", "추천", "맛집 추천"]
    assert not any(is_noise(form, "NNG") for c in morpheme_ngrams(tokens, tags, TAGS, frozenset(), 2) for form in c.split())


def documents(words: dict[str, int], size: int) -> list[list[str]]:
    """``size`` documents where each of ``words`` is in the given number of them (the first ones)."""
    return [[w for w, n in words.items() if i < n] for i in range(size)]


def test_rare_syllables_and_jamo_take_no_weight():
    food = documents({"가격": 25, "맛": 20, "친절": 15, "집": 12, "ㄷ": 4, "구": 1, "잇": 1, "간나": 1}, 50)
    phones = documents({"폰": 25, "배터리": 20, "화면": 10, "맛": 1, "구": 1}, 50)
    topic = np.repeat(np.array([0, 1], np.int32), 50)
    tokens = pa.array(food + phones, pa.list_(pa.string()))
    summary = summarize(topic, np.zeros(100, np.float32), np.zeros((100, 2)), tokens, pa.array(range(100)), 2, 1)
    words = {t: set(w) for t, (w, _) in class_tfidf(summary.terms, 10).items()}
    assert words == {0: {"가격", "맛", "친절", "집"}, 1: {"폰", "배터리", "화면"}}


def test_syllables_must_be_frequent_and_small_topics_keep_their_words():
    rows = [(0, f"단어{i}", 50) for i in range(25)] + [(0, "맛", 60), (0, "씨", 5), (0, "간나", 1), (1, "집", 1), (1, "폰", 1)]
    counts = pa.table({"topic": pa.array([r[0] for r in rows], pa.int32()), "term": [r[1] for r in rows],
                       "count": [r[2] for r in rows], "documents": [r[2] for r in rows]})
    kept = keyword_terms(counts, np.array([0, 100, 1])).column("term").to_pylist()
    assert "맛" in kept and "씨" not in kept and "간나" not in kept  # 씨: 5% of the topic, but only its 27th word
    assert {"집", "폰"} <= set(kept)  # a one-document topic has nothing but one-document words


def test_topics_of_real_reviews_have_no_junk_keywords(reviews_file, reviews, cluster, tmp_path):
    topics(reviews_file, tmp_path / "topics", method="kmeans", n_topics=5, client=cluster.client, progress=False)
    found = pd.read_parquet(tmp_path / "topics" / "topics.parquet")
    assigned = pd.read_parquet(tmp_path / "topics" / "doc_topics").merge(pd.read_parquet(tmp_path / "topics" / "_tokens"), on="id")
    unknown = {form for form, tag in tagged(reviews.text.tolist()) if tag == UNKNOWN}
    junk = []
    for row in found.itertuples():
        holding = pd.Series([w for ws in assigned.tokens[assigned.topic == row.topic] for w in set(ws)]).value_counts()
        rank = holding.rank(method="min", ascending=False)
        junk += [(row.topic, word, "jamo or unknown") for word in row.keywords if is_jamo_only(word) or word in unknown]
        junk += [(row.topic, word, "one document") for word in row.keywords if holding[word] < min(MIN_DOCUMENTS, row.size)]
        junk += [(row.topic, word, "rare syllable") for word in row.keywords if len(word) == 1 and
                 (holding[word] < SYLLABLE_MIN_SHARE * row.size or rank[word] > SYLLABLE_MAX_RANK)]
    assert junk == [] and all(len(words) > 0 for words in found.keywords)
