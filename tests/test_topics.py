"""Topics on real Korean text of three clearly different domains: movie reviews (NSMC),
video captions and news sentences (KorSTS), on a real local cluster."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kbatch.commands.embed import embed
from kbatch.commands.topics import topics
from kbatch.errors import InputError
from kbatch.topicmodel.ctfidf import class_tfidf
from kbatch.topicmodel.summary import combine, summarize

# NMI with the three domains, measured with the default model (use-m3): hdbscan 0.82 (0.75 with --outliers keep),
# kmeans 0.88, minibatch 0.53, ctm 0.29; with all-MiniLM-L6-v2 (English) 0.15-0.26 for
# every method; chance is about 0.002.
NMI_FLOOR = {"hdbscan": 0.5, "kmeans": 0.5, "minibatch": 0.3, "ctm": 0.1}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PER_DOMAIN = 150


@pytest.fixture(scope="module")
def domains(tmp_path_factory, cluster):
    """450 documents, 150 per domain, with their domain as a gold label, and their vectors."""
    sts = pd.read_csv(EXAMPLES / "korsts" / "sts-dev.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    reviews = pd.read_parquet(EXAMPLES / "reviews.parquet")
    parts = [pd.DataFrame({"text": reviews.text[:PER_DOMAIN], "domain": "movie review"})]
    for genre, name in (("main-captions", "video caption"), ("main-news", "news")):
        sentences = sts.loc[sts.genre == genre, "sentence1"].drop_duplicates()[:PER_DOMAIN]
        parts.append(pd.DataFrame({"text": sentences, "domain": name}))
    corpus = pd.concat(parts, ignore_index=True)
    corpus["doc"] = [f"d{i}" for i in range(len(corpus))]
    directory = tmp_path_factory.mktemp("domains")
    corpus.to_parquet(directory / "corpus.parquet", row_group_size=100)
    embed(directory / "corpus.parquet", directory / "vectors", id_col="doc", client=cluster.client, progress=False)
    return directory, corpus


def run_topics(domains, cluster, output, **options):
    directory, _ = domains
    return topics(directory / "corpus.parquet", output, embeddings=directory / "vectors", id_col="doc", label_col="domain",
                  client=cluster.client, progress=False, **options)


@pytest.mark.parametrize("method", ["hdbscan", "kmeans", "minibatch", "ctm"])
def test_topics_separate_three_domains(domains, cluster, tmp_path, method):
    result = run_topics(domains, cluster, tmp_path / "topics", n_topics=3, method=method)
    assert result.manifest["tokens"]["directory"] == str(tmp_path / "topics" / "_tokens")  # not beside --embeddings
    metrics = result.manifest["metrics"]
    assert metrics["nmi"] > NMI_FLOOR[method] and metrics["ari"] > 0
    assert 0 < metrics["topic_diversity"] <= 1 and -1 <= metrics["npmi"] <= 1

    found = pd.read_parquet(tmp_path / "topics" / "topics.parquet")
    assert list(found.topic[found.topic >= 0]) == [0, 1, 2] and found["size"].sum() == 3 * PER_DOMAIN
    assert (found.topic == -1).any() == (method == "hdbscan")  # only HDBSCAN leaves documents out
    assert all(len(words) == 10 for words in found.keywords[found.topic >= 0])  # the few outliers may have fewer
    assigned = pd.read_parquet(tmp_path / "topics" / "doc_topics")
    assert list(assigned.id) == [f"d{i}" for i in range(3 * PER_DOMAIN)]
    assert assigned.topic.value_counts().sort_index().tolist() == found["size"].tolist()


def test_outliers_close_to_a_topic_join_it(domains, cluster, tmp_path):
    # Measured: HDBSCAN alone leaves 19% of the documents outliers (NMI 0.72); outliers that
    # join their nearest topic when HDBSCAN's own members are as far leave 3% (NMI 0.78).
    joined = run_topics(domains, cluster, tmp_path / "joined")
    kept = run_topics(domains, cluster, tmp_path / "kept", outliers="keep")
    assert joined.manifest["outlier_share"] < 0.06 < 0.15 < kept.manifest["outlier_share"]
    assert joined.manifest["metrics"]["nmi"] > kept.manifest["metrics"]["nmi"] + 0.03
    assigned = pd.read_parquet(tmp_path / "joined" / "doc_topics")
    assert joined.manifest["counts"]["outliers"] == (assigned.topic == -1).sum()


def test_topic_words_are_morphemes_of_their_documents(domains, cluster, tmp_path):
    run_topics(domains, cluster, tmp_path / "topics", n_topics=3)
    found = pd.read_parquet(tmp_path / "topics" / "topics.parquet")
    assigned = pd.read_parquet(tmp_path / "topics" / "doc_topics")
    tokens = pd.read_parquet(tmp_path / "topics" / "_tokens")
    for row in found.itertuples():
        morphemes = set(np.concatenate(tokens.tokens[assigned.topic == row.topic].tolist()))
        assert set(row.keywords) <= morphemes
        assert list(row.keyword_scores) == sorted(row.keyword_scores, reverse=True)
        assert set(row.representative_ids) <= set(assigned.id[assigned.topic == row.topic])


def test_hdbscan_finds_its_own_count_and_outliers(domains, cluster, tmp_path):
    result = run_topics(domains, cluster, tmp_path / "topics", min_cluster_size=10, plot=tmp_path / "map.html")
    assert result.manifest["n_topics_chosen"].startswith("HDBSCAN (min_cluster_size=10) found")
    found = pd.read_parquet(tmp_path / "topics" / "topics.parquet")
    assert (found.topic >= 0).sum() == result.manifest["counts"]["topics"] >= 2
    assert found["size"].sum() == 3 * PER_DOMAIN
    page = (tmp_path / "map.html").read_text()
    assert all(word in page for word in found.keywords[found.topic >= 0].iloc[0])


def test_auto_count_says_how_and_mmr_reranks_words(domains, cluster, tmp_path):
    plain = run_topics(domains, cluster, tmp_path / "plain", method="kmeans")
    how = plain.manifest["n_topics_chosen"]
    assert how.startswith(f"k={plain.manifest['counts']['topics']} had the best cosine silhouette")
    varied = run_topics(domains, cluster, tmp_path / "varied", method="kmeans", keyword_diversity=0.7)
    before, after = (pd.read_parquet(Path(r.output) / "topics.parquet") for r in (plain, varied))
    assert list(before["size"]) == list(after["size"])
    assert any(list(a) != list(b) for a, b in zip(before.keywords, after.keywords, strict=True))
    assert all(-1 <= s <= 1 for scores in after.keyword_scores for s in scores)  # cosines to the topic, not c-TF-IDF


def test_documents_without_text_get_no_topic(tmp_path, cluster, reviews):
    corpus = reviews.head(120).copy()
    corpus.loc[[3, 50], "text"] = [None, "   "]
    corpus.to_parquet(tmp_path / "corpus.parquet")
    result = topics(tmp_path / "corpus.parquet", tmp_path / "topics", method="kmeans", n_topics=2, client=cluster.client, progress=False)
    assigned = pd.read_parquet(tmp_path / "topics" / "doc_topics")
    assert assigned.topic.isna().tolist() == [i in (3, 50) for i in range(120)]
    assert result.manifest["rows_skipped"] == {"no_text": 2}


def test_tiny_corpora_fail_clearly_or_work(tmp_path, cluster, reviews):
    reviews.head(6).to_parquet(tmp_path / "six.parquet")
    options = {"client": cluster.client, "progress": False}
    with pytest.raises(InputError, match="HDBSCAN needs more than 10 documents with text, the sample has 6; try `method` kmeans"):
        topics(tmp_path / "six.parquet", tmp_path / "hdbscan", **options)
    with pytest.raises(InputError, match="`n_topics` auto needs at least 30 documents"):
        topics(tmp_path / "six.parquet", tmp_path / "auto", method="kmeans", **options)
    result = topics(tmp_path / "six.parquet", tmp_path / "two", method="kmeans", n_topics=2, **options)
    assert result.manifest["rows_done"] == 6
    with pytest.raises(InputError, match="more than the 6 sampled documents"):
        topics(tmp_path / "six.parquet", tmp_path / "many", method="kmeans", n_topics=7, **options)
    pd.DataFrame({"text": [None, ""]}).to_parquet(tmp_path / "empty.parquet")
    with pytest.raises(InputError, match="no documents with text"):
        topics(tmp_path / "empty.parquet", tmp_path / "none", **options)


def test_summaries_add_up_to_the_whole():
    rng = np.random.default_rng(0)
    topic = rng.integers(-1, 3, 40).astype(np.int32)
    score = rng.random(40).astype(np.float32)
    vectors = rng.random((40, 4))
    words = pa.array([list(rng.choice(["영화", "배우", "주가", "지수"], 3)) for _ in range(40)], pa.list_(pa.string()))
    ids = pa.array([f"d{i}" for i in range(40)])
    labels = pa.array(rng.choice(["a", "b"], 40))

    def part(rows: slice):
        return summarize(topic[rows], score[rows], vectors[rows], words[rows], ids[rows], 3, 2, labels[rows])

    whole, parts = part(slice(0, 40)), combine(part(slice(0, 15)), part(slice(15, 31)), part(slice(31, 40)))
    assert np.array_equal(whole.sizes, parts.sizes) and np.allclose(whole.vector_sums, parts.vector_sums)
    assert whole.terms.sort_by([("topic", "ascending"), ("term", "ascending")]).equals(
        parts.terms.sort_by([("topic", "ascending"), ("term", "ascending")]))
    assert whole.representatives.sort_values(["topic", "score"]).reset_index(drop=True).equals(
        parts.representatives.sort_values(["topic", "score"]).reset_index(drop=True))
    assert whole.contingency.sort_index().equals(parts.contingency.sort_index().astype(whole.contingency.dtype))


def test_class_tfidf_follows_bertopic_with_frequent_words_reduced():
    terms = pa.table({"topic": pa.array([0, 0, 1, 1], pa.int32()), "term": ["영화", "배우", "영화", "주가"], "count": [3, 1, 1, 4]})
    words = class_tfidf(terms, 2)
    average = (4 + 5) / 2
    expected_movie = np.sqrt(3 / 4) * np.log(1 + average / 4)
    expected_actor = np.sqrt(1 / 4) * np.log(1 + average / 1)
    assert words[0][0] == ["배우", "영화"] and np.allclose(words[0][1], [expected_actor, expected_movie])  # the rarer word leads
    assert words[1][0] == ["주가", "영화"]


def test_cli_prints_quality_and_refuses_bad_options(domains, tmp_path):
    directory, _ = domains
    command = [sys.executable, "-m", "kbatch", "topics", str(directory / "corpus.parquet"), "--embeddings", str(directory / "vectors"),
               "--id-col", "doc", "--n-topics", "3", "--label-col", "domain", "-o", str(tmp_path / "cli"), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "kbatch topics: 450 rows" in done.stdout and "NMI" in done.stdout
    manifest = json.loads((tmp_path / "cli" / "_kbatch.json").read_text())
    assert manifest["metrics"]["label_col"] == "domain"
    bad = subprocess.run([*command[:-1], "--plot", "map.pdf"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 3 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("kbatch: error: --plot must end in .html or .png, got 'map.pdf' (details: ")
