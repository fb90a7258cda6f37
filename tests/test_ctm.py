"""CombinedTM on a small corpus with three clearly separated themes: food, sports, weather.

Each document draws its words from one theme, and its embedding (standing in for SBERT)
carries the theme too, so a working model finds the three themes as its three topics.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse
import torch
from sklearn.metrics import normalized_mutual_info_score

from kbatch.errors import InputError
from kbatch.topicmodel.ctm import CombinedTM, CTMSettings

THEMES = {
    "food": ["김치", "비빔밥", "불고기", "떡볶이", "라면", "냉면", "삼겹살", "만두", "김밥", "된장찌개"],
    "sports": ["축구", "야구", "농구", "배구", "골프", "테니스", "경기", "선수", "감독", "득점"],
    "weather": ["날씨", "비", "눈", "바람", "태풍", "기온", "장마", "햇빛", "구름", "폭염"],
}
VOCABULARY = [word for words in THEMES.values() for word in words]
SETTINGS = CTMSettings(n_topics=3, epochs=80, batch_size=32, seed=0)


def corpus(docs_per_theme: int, seed: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Word counts, 32-dim embeddings and the true theme of each document."""
    rng = np.random.default_rng(seed)
    themes = np.repeat(np.arange(len(THEMES)), docs_per_theme)
    counts = np.zeros((len(themes), len(VOCABULARY)), dtype=np.int64)
    for row, theme in enumerate(themes):
        words = rng.integers(0, 10, size=rng.integers(5, 16)) + 10 * theme
        np.add.at(counts[row], words, 1)
    projection = np.random.default_rng(1234).standard_normal((len(THEMES), 32))
    embeddings = (np.eye(len(THEMES))[themes] + 0.3 * rng.standard_normal((len(themes), len(THEMES)))) @ projection
    return scipy.sparse.csr_matrix(counts), embeddings.astype(np.float32), themes


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A model this small gains nothing from a second intra-op thread, which on a busy shared machine can stall it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train() -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    return corpus(docs_per_theme=100, seed=0)


@pytest.fixture(scope="module")
def model(train) -> CombinedTM:
    bow, embeddings, _ = train
    return CombinedTM.fit(bow, embeddings, SETTINGS)


def test_each_document_gets_the_topic_of_its_theme(model, train):
    bow, embeddings, themes = train
    theta = model.transform(bow, embeddings)
    assert theta.shape == (300, 3)
    assert theta.dtype == np.float32
    np.testing.assert_allclose(theta.sum(axis=1), 1, rtol=1e-5)
    assert normalized_mutual_info_score(themes, theta.argmax(axis=1)) > 0.8


def test_new_documents_are_assigned_as_well(model):
    bow, embeddings, themes = corpus(docs_per_theme=20, seed=1)
    theta = model.transform(bow, embeddings)
    assert normalized_mutual_info_score(themes, theta.argmax(axis=1)) > 0.8


def test_each_topic_is_one_theme(model):
    topics = model.top_words(VOCABULARY, n=5)
    themes_of_topics = []
    for words, probabilities in topics:
        assert len(words) == len(probabilities) == 5
        assert probabilities == sorted(probabilities, reverse=True)
        (theme,) = {name for name, theme_words in THEMES.items() if set(words) <= set(theme_words)}
        themes_of_topics.append(theme)
    assert sorted(themes_of_topics) == sorted(THEMES)
    assert model.topic_word_weights().shape == (3, len(VOCABULARY))


def test_a_document_without_words_is_placed_by_its_embedding(model, train):
    bow, embeddings, themes = train
    food_topic = np.bincount(model.transform(bow, embeddings)[themes == 0].argmax(axis=1)).argmax()
    empty = scipy.sparse.csr_matrix((1, len(VOCABULARY)))
    theta = model.transform(empty, embeddings[:1])
    assert theta.sum() == pytest.approx(1)
    assert theta.argmax() == food_topic


def test_the_model_pickles_small_and_gives_the_same_topics(model, train):
    bow, embeddings, _ = train
    payload = pickle.dumps(model)
    assert len(payload) < 100_000
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.transform(bow, embeddings), model.transform(bow, embeddings))


def test_the_same_seed_gives_the_same_model_and_leaves_torch_rng_alone(train):
    bow, embeddings, _ = train
    settings = CTMSettings(n_topics=3, epochs=2, batch_size=64, seed=7)
    before = torch.random.get_rng_state()
    first = CombinedTM.fit(bow, embeddings, settings)
    assert torch.equal(torch.random.get_rng_state(), before)
    second = CombinedTM.fit(bow, embeddings, settings)
    np.testing.assert_array_equal(first.topic_word_weights(), second.topic_word_weights())


def test_transform_goes_batch_by_batch_with_the_same_result(model):
    bow, embeddings, _ = corpus(docs_per_theme=1000, seed=2)
    theta = model.transform(bow, embeddings)
    np.testing.assert_allclose(theta[-10:], model.transform(bow[-10:], embeddings[-10:]), atol=1e-6)


@pytest.mark.parametrize(
    ("rows", "vocabulary", "n_topics", "message"),
    [
        (10, 30, 3, "rows"),
        (12, 1, 3, "vocabulary"),
        (12, 30, 1, "n_topics"),
    ],
)
def test_bad_input_is_refused_with_one_line(rows, vocabulary, n_topics, message):
    bow = scipy.sparse.csr_matrix(np.ones((12, vocabulary)))
    embeddings = np.ones((rows, 8), dtype=np.float32)
    with pytest.raises(InputError, match=message) as error:
        CombinedTM.fit(bow, embeddings, CTMSettings(n_topics=n_topics, epochs=1))
    assert "\n" not in str(error.value)


def test_new_documents_need_the_fitted_vocabulary_and_embedding_size(model):
    with pytest.raises(InputError, match="columns"):
        model.transform(scipy.sparse.csr_matrix((2, 5)), np.zeros((2, 32)))
    with pytest.raises(InputError, match="dimensions"):
        model.transform(scipy.sparse.csr_matrix((2, len(VOCABULARY))), np.zeros((2, 16)))
    with pytest.raises(InputError, match="vocabulary"):
        model.top_words(VOCABULARY[:-1], n=3)
