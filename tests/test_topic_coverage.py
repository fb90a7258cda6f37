"""Topics that cover the corpus and counts that tell the truth, on the README's example:
2,000 NSMC reviews (examples/reviews.parquet), on a real local cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kbatch.commands.embed import embed
from kbatch.commands.topics import topics
from kbatch.topicmodel.clustering import cover_all

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REVIEWS = 2_000


@pytest.fixture(scope="module")
def example(tmp_path_factory, cluster):
    """The README example's reviews and their vectors, embedded once."""
    directory = tmp_path_factory.mktemp("example")
    pd.read_parquet(EXAMPLES / "reviews.parquet").to_parquet(directory / "reviews.parquet", row_group_size=500)
    embed(directory / "reviews.parquet", directory / "vectors", id_col="review_id", client=cluster.client, progress=False)
    return directory


def run(example, cluster, output: Path, **options):
    return topics(example / "reviews.parquet", output, embeddings=example / "vectors", id_col="review_id", client=cluster.client,
                  progress=False, **options)


def final_counts(output: Path) -> tuple[pd.DataFrame, pd.Series]:
    """``topics.parquet`` and the documents per topic that ``doc_topics`` holds."""
    return pd.read_parquet(output / "topics.parquet"), pd.read_parquet(output / "doc_topics").topic.value_counts().sort_index()


def test_readme_example_covers_most_reviews_and_counts_agree(example, cluster, tmp_path):
    # Measured with use-m3: HDBSCAN alone (--outliers keep, the old default) leaves 66% of the
    # reviews outliers and had a topic of size 0; outliers that join their nearest topic leave
    # 34% (BERTopic's defaults on the same vectors: 48%). With use-m3-ko HDBSCAN leaves 69% of
    # the sample outliers, and 30% after they join their nearest topic.
    result = run(example, cluster, tmp_path / "topics", plot=tmp_path / "map.html")
    table, per_topic = final_counts(tmp_path / "topics")
    share = per_topic.get(-1, 0) / REVIEWS
    assert share < 0.40

    assert (table["size"] > 0).all()  # no empty topic
    assert table.set_index("topic")["size"].to_dict() == per_topic.to_dict()
    counts = result.manifest["counts"]
    assert counts == {"topics": int((per_topic.index >= 0).sum()), "outliers": int(per_topic.get(-1, 0))}
    assert result.manifest["outlier_share"] == round(share, 4)
    how = result.manifest["n_topics_chosen"]
    assert "69% of them outliers" in how and f"which leaves {share:.0%} of the sample outliers" in how  # the sample's, named so
    assert f"{counts['topics']} topics of {REVIEWS:,} documents (hdbscan)" in (tmp_path / "map.html").read_text()

    kept = run(example, cluster, tmp_path / "keep", outliers="keep")
    assert kept.manifest["outlier_share"] > 0.6 > share
    kept_table, kept_per_topic = final_counts(tmp_path / "keep")
    assert (kept_table["size"] > 0).all() and kept_table.set_index("topic")["size"].to_dict() == kept_per_topic.to_dict()


@pytest.mark.parametrize(("method", "k"), [("hdbscan", 8), ("kmeans", 8), ("minibatch", 40), ("ctm", 40)])
def test_n_topics_gives_exactly_that_many_non_empty_topics(example, cluster, tmp_path, method, k):
    # Measured before: HDBSCAN finds 5 clusters here and gave 5 topics for --n-topics 8; the
    # CTM gave 8 of its 40 topics no document.
    result = run(example, cluster, tmp_path / "topics", method=method, n_topics=k)
    table, per_topic = final_counts(tmp_path / "topics")
    assert list(table.topic[table.topic >= 0]) == list(range(k)) and (table["size"] > 0).all()
    assert list(per_topic.index[per_topic.index >= 0]) == list(range(k))
    assert result.manifest["counts"]["topics"] == k
    if method == "hdbscan":
        assert result.manifest["n_topics_chosen"].endswith(f"fewer than {k}, so k-means on the sample made {k} topics (no outliers)")


def test_cover_all_gives_an_empty_topic_the_row_that_loses_least():
    scores = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.7], [0.1, 0.9, 0.3], [0.2, 0.8, 0.4]], dtype=np.float32)
    bias = cover_all(scores)
    assert np.argmax(scores + bias, axis=1).tolist() == [0, 2, 1, 1]
    assert bias[:2].tolist() == [0, 0] and 0.1 < bias[2] < 0.11
    assert not cover_all(scores[:, :2]).any()  # nothing to raise
