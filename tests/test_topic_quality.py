"""Topic quality, the way it runs at scale: count each partition, add the counts, score the sum."""

from __future__ import annotations

import math
from functools import reduce
from operator import add

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from kbatch.topicmodel.quality import contingency, count_cooccurrence, nmi_ari, npmi, topic_diversity

# Five tokenised reviews; the fourth has no tokens at all (None), the fifth is empty.
REVIEWS = [
    ["배송", "빠르다", "좋다"],
    ["배송", "느리다"],
    ["좋다", "좋다", "가격"],
    None,
    [],
]
WORDS = ["배송", "좋다", "가격"]


def test_counts_documents_not_occurrences():
    cooc = count_cooccurrence(REVIEWS, WORDS)

    assert cooc.words == WORDS
    assert cooc.documents == 5  # None and [] are documents without any of the words
    # 배송: reviews 1, 2; 좋다: reviews 1, 3 (twice in 3, counted once); 가격: review 3.
    # 배송+좋다: review 1; 좋다+가격: review 3; 배송+가격: never.
    expected = [
        [2, 1, 0],
        [1, 2, 1],
        [0, 1, 1],
    ]
    np.testing.assert_array_equal(cooc.counts, expected)
    assert cooc.counts.dtype == np.int64


def test_partitions_add_up_to_the_whole():
    together = count_cooccurrence(REVIEWS, WORDS)
    summed = count_cooccurrence(REVIEWS[:2], WORDS) + count_cooccurrence(REVIEWS[2:], WORDS)

    assert summed.words == together.words
    assert summed.documents == together.documents
    np.testing.assert_array_equal(summed.counts, together.counts)


def test_partitions_reduce_in_a_dask_bag():
    db = pytest.importorskip("dask.bag")
    documents = db.from_sequence(REVIEWS * 10, npartitions=4)

    cooc = documents.reduction(lambda part: count_cooccurrence(part, WORDS), lambda parts: reduce(add, parts), split_every=2).compute(
        scheduler="sync"
    )

    assert cooc.documents == 50
    np.testing.assert_array_equal(cooc.counts, count_cooccurrence(REVIEWS, WORDS).counts * 10)


def test_counts_of_different_words_do_not_add():
    with pytest.raises(ValueError, match="different word lists"):
        count_cooccurrence(REVIEWS, WORDS) + count_cooccurrence(REVIEWS, ["배송", "좋다"])


def test_npmi_by_hand():
    cooc = count_cooccurrence(REVIEWS, WORDS)
    # P(배송) = P(좋다) = 2/5, P(가격) = 1/5; P(배송, 좋다) = P(좋다, 가격) = 1/5, P(배송, 가격) = 0.
    배송_좋다 = math.log((1 / 5) / (2 / 5 * 2 / 5)) / -math.log(1 / 5)
    좋다_가격 = math.log((1 / 5) / (2 / 5 * 1 / 5)) / -math.log(1 / 5)
    배송_가격 = -1.0  # never in the same review

    [whole, pair] = npmi(cooc, [WORDS, ["좋다", "가격"]])

    assert whole == pytest.approx((배송_좋다 + 좋다_가격 + 배송_가격) / 3)
    assert pair == pytest.approx(좋다_가격)


def test_npmi_limits():
    # "배송" and "좋다" are in every document; "가격" and "빠르다" are each in half, never together;
    # "가격" and "느리다" are each in half and together in a quarter: independent (1/4 = 1/2 × 1/2).
    documents = [
        ["배송", "좋다", "가격", "느리다"],
        ["배송", "좋다", "가격"],
        ["배송", "좋다", "빠르다", "느리다"],
        ["배송", "좋다", "빠르다"],
    ]
    cooc = count_cooccurrence(documents, ["배송", "좋다", "가격", "빠르다", "느리다"])

    always, never, independent, single, empty = npmi(cooc, [["배송", "좋다"], ["가격", "빠르다"], ["가격", "느리다"], ["배송"], []])

    assert always == 1.0
    assert never == -1.0
    assert independent == pytest.approx(0.0)
    assert math.isnan(single)
    assert math.isnan(empty)


def test_npmi_needs_counts_of_every_topic_word():
    with pytest.raises(ValueError, match="가성비"):
        npmi(count_cooccurrence(REVIEWS, WORDS), [["배송", "가성비"]])


def test_topic_diversity():
    assert topic_diversity([["배송", "좋다"], ["배송", "가격"]]) == 3 / 4
    assert topic_diversity([["배송", "좋다"], ["가격", "느리다"]]) == 1.0
    assert topic_diversity([]) == 0.0
    assert topic_diversity([[], []]) == 0.0


def test_contingency_counts_pairs_and_drops_missing_labels():
    table = contingency(["긍정", "부정", None, "긍정", float("nan")], [0, 1, 1, 0, 2])

    assert table.to_dict() == {("긍정", 0): 2, ("부정", 1): 1}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nmi_ari_from_summed_partitions_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(["긍정", "부정", "중립", "광고"], size=900)
    # Topics follow the labels for 60% of documents, so the scores are neither 0 nor 1.
    topics = np.where(rng.random(900) < 0.6, np.searchsorted(np.unique(labels), labels), rng.integers(-1, 6, size=900))

    parts = [
        contingency(label_part, topic_part)
        for label_part, topic_part in zip(np.array_split(labels, 3), np.array_split(topics, 3), strict=True)
    ]
    table = reduce(lambda left, right: left.add(right, fill_value=0), parts)
    nmi, ari = nmi_ari(table)

    assert nmi == pytest.approx(normalized_mutual_info_score(labels, topics), abs=1e-9)
    assert ari == pytest.approx(adjusted_rand_score(labels, topics), abs=1e-9)


def test_nmi_ari_with_integer_labels_and_missing_ones():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=300).astype(object)
    labels[rng.random(300) < 0.1] = None
    topics = rng.integers(0, 4, size=300)
    known = pd.notna(labels)

    nmi, ari = nmi_ari(contingency(labels[:100], topics[:100]).add(contingency(labels[100:], topics[100:]), fill_value=0))

    assert nmi == pytest.approx(normalized_mutual_info_score(labels[known].astype(int), topics[known]), abs=1e-9)
    assert ari == pytest.approx(adjusted_rand_score(labels[known].astype(int), topics[known]), abs=1e-9)


@pytest.mark.parametrize(
    ("labels", "topics"),
    [
        (["a", "a", "b", "b"], [1, 1, 0, 0]),  # the same split under other names
        (["a", "a", "a", "a"], [0, 0, 0, 0]),  # neither is split
        (["a", "a", "a", "a"], [0, 1, 2, 3]),  # topics split what the labels do not
        (["a", "b", "c", "d"], [0, 0, 0, 0]),
        (["a", "b", "c", "d"], [0, 1, 2, 3]),  # all apart on both sides
    ],
)
def test_nmi_ari_special_cases_as_sklearn(labels, topics):
    nmi, ari = nmi_ari(contingency(labels, topics))

    assert nmi == pytest.approx(normalized_mutual_info_score(labels, topics), abs=1e-12)
    assert ari == pytest.approx(adjusted_rand_score(labels, topics), abs=1e-12)
