"""Topic ids that last across runs: a weekly topics job's "topic 3" is the same topic every week."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch.commands.embed import embed
from kbatch.commands.topics import topics
from kbatch.errors import InputError
from kbatch.topicmodel.continuity import PreviousTopics, carry_ids

EDITED = 20  # 1% of the 2,000 reviews
REVIEWS = Path(__file__).resolve().parents[1] / "examples" / "reviews.parquet"


@pytest.fixture(scope="module")
def weeks(tmp_path_factory, cluster):
    """Two weeks of 2,000 reviews with their vectors: in the second, 1% of the reviews are others."""
    work = tmp_path_factory.mktemp("weeks")
    first = pd.read_parquet(REVIEWS)[["review_id", "text"]]
    first.to_parquet(work / "week1.parquet")
    embed(work / "week1.parquet", work / "week1-emb", id_col="review_id", client=cluster.client, progress=False)
    vectors = pd.read_parquet(work / "week1-emb")
    edited = np.random.default_rng(0).choice(len(first), EDITED, replace=False)
    donors = (edited + 1000) % len(first)
    second, second_vectors = first.copy(), vectors.copy()
    second.loc[edited, "text"] = first["text"].to_numpy()[donors]
    second_vectors.loc[edited, "embedding"] = vectors["embedding"].to_numpy()[donors]
    second.to_parquet(work / "week2.parquet")
    pq.write_table(pa.table({"id": second_vectors["id"], "embedding": pa.array(second_vectors["embedding"].map(list),
                                                                              pa.list_(pa.float32(), 512))}),
                   work / "week2-emb.parquet")
    unchanged = np.setdiff1d(first["review_id"].to_numpy(), first["review_id"].to_numpy()[edited])
    return work, unchanged


def run(work, week: int, output: str, cluster, **options):
    embeddings = work / ("week1-emb" if week == 1 else "week2-emb.parquet")
    return topics(work / f"week{week}.parquet", work / output, method="kmeans", n_topics=6, embeddings=embeddings,
                  id_col="review_id", client=cluster.client, progress=False, **options)


def kept_share(work, before: str, after: str, ids: np.ndarray) -> float:
    first = pd.read_parquet(work / before / "doc_topics").set_index("id")["topic"]
    second = pd.read_parquet(work / after / "doc_topics").set_index("id")["topic"]
    return float((first.loc[ids] == second.loc[ids]).mean())


def test_a_rerun_with_one_percent_changed_keeps_the_topic_ids_of_unchanged_documents(weeks, cluster):
    work, unchanged = weeks
    run(work, 1, "t1", cluster)
    renumbered = run(work, 2, "t2-fresh", cluster, seed=1)
    carried = run(work, 2, "t2", cluster, seed=1, previous=work / "t1")

    assert kept_share(work, "t1", "t2-fresh", unchanged) < 0.9  # a new sample and seed number the topics anew
    assert kept_share(work, "t1", "t2", unchanged) >= 0.9
    assert carried.manifest["topic_ids"]["kept"] >= 5 and renumbered.manifest["topic_ids"]["previous"] is None
    table = pd.read_parquet(work / "t2" / "topics.parquet")
    assert len(table["centroid"].iloc[0]) == 512 and table["topic"].is_unique


def test_a_new_topic_never_takes_the_id_of_one_that_is_gone():
    previous = PreviousTopics(np.array([0, 1, 5]), np.eye(3, 4, dtype=np.float32), last_id=7)
    centroids = np.array([[1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float32)  # topic 0 again, and one unlike any before

    assert carry_ids(centroids, previous).tolist() == [0, 8]


def test_previous_topics_from_another_model_are_refused():
    previous = PreviousTopics(np.array([0, 1]), np.eye(2, 384, dtype=np.float32), last_id=1)

    with pytest.raises(InputError, match="another model"):
        carry_ids(np.eye(2, 512, dtype=np.float32), previous)
