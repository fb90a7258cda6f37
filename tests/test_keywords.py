"""Keywords: candidates are morpheme n-grams of the document, ranked as KeyBERT ranks them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sentence_transformers import SentenceTransformer

from kbatch.analyzers.tags import NOUNS
from kbatch.commands.keywords import keywords
from kbatch.commands.tokenize import tokenize
from kbatch.errors import InputError
from kbatch.stages.candidates import morpheme_ngrams
from kbatch.vectors.mmr import mmr


def test_candidates_are_adjacent_noun_runs():
    tokens = ["배송", "상태", "가", "좋", "아요", "포장", "박스", "최고"]
    tags = ["NNG", "NNG", "JKS", "VA", "EF", "NNG", "NNG", "NNG"]
    expected = ["배송", "상태", "배송 상태", "포장", "박스", "최고", "포장 박스", "박스 최고"]
    assert morpheme_ngrams(tokens, tags, NOUNS, frozenset(), 2) == expected
    assert morpheme_ngrams(tokens, tags, NOUNS, frozenset({"상태"}), 1) == ["배송", "포장", "박스", "최고"]


def keybert_mmr(doc: np.ndarray, words: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """KeyBERT's MMR, written out plainly."""
    relevance = words @ doc
    chosen, rest = [int(np.argmax(relevance))], [i for i in range(len(words)) if i != int(np.argmax(relevance))]
    for _ in range(min(top_n, len(words)) - 1):
        score = [(1 - diversity) * relevance[i] - diversity * max(words[i] @ words[j] for j in chosen) for i in rest]
        chosen.append(rest.pop(int(np.argmax(score))))
    return chosen


@pytest.mark.parametrize("diversity", [0.0, 0.3, 0.7])
def test_mmr_matches_keybert(diversity):
    rng = np.random.default_rng(1)
    words = rng.normal(size=(30, 16))
    words /= np.linalg.norm(words, axis=1, keepdims=True)
    doc = words[:5].mean(axis=0)
    chosen, scores = mmr(doc, words, 6, diversity)
    assert chosen.tolist() == keybert_mmr(doc, words, 6, diversity)
    assert np.allclose(scores, words[chosen] @ doc)


def test_keywords_are_the_documents_own_morphemes_ranked_by_cosine(tmp_path, cluster, reviews, model_path):
    corpus = reviews.head(60).copy()
    corpus.loc[[7, 8], "text"] = [None, "ㅋㅋㅋ !!!"]
    corpus.to_parquet(tmp_path / "reviews.parquet")
    result = keywords(tmp_path / "reviews.parquet", tmp_path / "kw", top_n=4, client=cluster.client, progress=False)
    assert result.manifest["rows_skipped"] == {"null_text": 1}
    found = pd.read_parquet(tmp_path / "kw")
    tokenize(tmp_path / "reviews.parquet", tmp_path / "nouns", pos="nouns", client=cluster.client, progress=False)
    nouns = pd.read_parquet(tmp_path / "nouns")
    assert found.keywords[7] is None and list(found.keywords[8]) == []

    model = SentenceTransformer(model_path, device="cpu", trust_remote_code=True)
    for row in (0, 1, 2, 10, 30):
        words, scores = list(found.keywords[row]), np.asarray(found.scores[row])
        assert 0 < len(words) <= 4 and all(set(w.split()) <= set(nouns.tokens[row]) for w in words)
        assert list(scores) == sorted(scores, reverse=True)
        doc, candidates = model.encode([corpus.text[row]], normalize_embeddings=True), model.encode(words, normalize_embeddings=True)
        assert np.allclose(candidates @ doc[0], scores, atol=1e-4)


def test_diversity_changes_the_choice_and_bad_options_fail(tmp_path, cluster, reviews):
    reviews.head(40).to_parquet(tmp_path / "reviews.parquet")
    plain = keywords(tmp_path / "reviews.parquet", tmp_path / "plain", top_n=5, client=cluster.client, progress=False)
    varied = keywords(tmp_path / "reviews.parquet", tmp_path / "varied", top_n=5, diversity=0.8, client=cluster.client, progress=False)
    a, b = pd.read_parquet(plain.output), pd.read_parquet(varied.output)
    assert any(list(x) != list(y) for x, y in zip(a.keywords, b.keywords, strict=True))
    assert all(x[0] == y[0] for x, y in zip(a.keywords, b.keywords, strict=True) if len(x))  # MMR starts from the best
    with pytest.raises(InputError, match="--diversity must be between 0 and 1"):
        keywords(tmp_path / "reviews.parquet", tmp_path / "bad", diversity=1.5)
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputError, match="the input has no rows"):
        keywords(tmp_path / "empty.parquet", tmp_path / "none")


def test_cli_writes_keywords(tmp_path, reviews):
    reviews.head(30).to_parquet(tmp_path / "reviews.parquet")
    command = [sys.executable, "-m", "kbatch", "keywords", str(tmp_path / "reviews.parquet"), "--top-n", "3", "--diversity", "0.5",
               "-o", str(tmp_path / "kw"), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kbatch keywords: 30 rows") and "keywords" in done.stdout
    assert pd.read_parquet(tmp_path / "kw").keywords.map(len).between(0, 3).all()
