"""Product matching: blockwise top-k equals brute force, on a real cluster, with real vectors."""

import numpy as np
import pandas as pd
import pytest
import torch

from kbatch.commands.embed import embed
from kbatch.commands.match import match
from kbatch.errors import InputError
from kbatch.vectors.topk import topk_blockwise


def test_blockwise_topk_equals_brute_force():
    torch.manual_seed(0)
    right = torch.nn.functional.normalize(torch.randn(1000, 32), dim=1)
    left = torch.nn.functional.normalize(torch.randn(70, 32), dim=1)
    scores, where = topk_blockwise(left, right, 7, block_rows=64)
    expected_scores, expected_where = torch.topk(left @ right.T, 7, dim=1)
    assert torch.equal(where, expected_where) and torch.allclose(scores, expected_scores)


def test_self_offset_and_invalid_rows_never_match():
    vectors = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    valid = torch.ones(50, dtype=torch.bool)
    valid[3] = False
    _, where = topk_blockwise(vectors[10:20], vectors, 49, self_offset=10, valid=valid, block_rows=16)
    assert not (where == torch.arange(10, 20)[:, None]).any()
    assert not (where == 3).any() and (where[:, -1] == -1).all()


def brute_force(left: pd.DataFrame, right: pd.DataFrame, k: int, exclude_self: bool = False) -> pd.DataFrame:
    a, b = np.stack(left["embedding"]), np.stack(right["embedding"])
    scores = a @ b.T
    if exclude_self:
        np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = [(left["id"].iloc[i], right["id"].iloc[j], scores[i, j], r + 1) for i in range(len(a)) for r, j in enumerate(order[i])]
    return pd.DataFrame(rows, columns=["left_id", "right_id", "score", "rank"])


@pytest.fixture
def catalogs(tmp_path, reviews):
    offers = reviews.iloc[:120][["review_id", "text"]]
    catalog = reviews.iloc[100:300][["review_id", "text"]]
    offers.to_parquet(tmp_path / "offers.parquet", row_group_size=50)
    catalog.to_parquet(tmp_path / "catalog.parquet", row_group_size=80)
    return tmp_path / "offers.parquet", tmp_path / "catalog.parquet"


def test_match_equals_brute_force_and_reuses_embeddings(tmp_path, catalogs, cluster):
    offers, catalog = catalogs
    options = {"id_col": "review_id", "client": cluster.client, "progress": False}
    left = embed(offers, tmp_path / "offers-emb", **options)
    result = match(tmp_path / "offers-emb", catalog, tmp_path / "matches", top_k=5, **options)
    got = pd.read_parquet(tmp_path / "matches").sort_values(["left_id", "rank"]).reset_index(drop=True)
    vectors = {side: pd.read_parquet(path).sort_values("id") for side, path in
               (("left", tmp_path / "offers-emb"), ("right", tmp_path / "matches" / "_embeddings" / "right"))}
    expected = brute_force(vectors["left"], vectors["right"], 5).sort_values(["left_id", "rank"]).reset_index(drop=True)
    assert got["left_id"].tolist() == expected["left_id"].tolist() and got["rank"].tolist() == expected["rank"].tolist()
    assert np.allclose(got["score"], expected["score"], atol=1e-5)
    # Ids may differ only among right rows that tie (reviews the model cannot tell apart),
    # and then the id kbatch chose must truly have that score.
    left_vectors = dict(zip(vectors["left"]["id"], vectors["left"]["embedding"], strict=True))
    right_vectors = dict(zip(vectors["right"]["id"], vectors["right"]["embedding"], strict=True))
    for row in got[got["right_id"] != expected["right_id"]].itertuples():
        assert float(left_vectors[row.left_id] @ right_vectors[row.right_id]) == pytest.approx(row.score, abs=1e-5)
    assert result.manifest["sides"]["left"] == str(tmp_path / "offers-emb")  # no second encoding
    assert left.manifest["rows_done"] == 120 and result.manifest["counts"]["matches"] == 600


def test_partitions_cut_inside_embed_files_match_the_same(tmp_path, catalogs, cluster):
    offers, catalog = catalogs
    options = {"top_k": 3, "id_col": "review_id", "client": cluster.client, "progress": False}
    match(offers, catalog, tmp_path / "whole", **options)
    match(tmp_path / "whole" / "_embeddings" / "left", tmp_path / "whole" / "_embeddings" / "right", tmp_path / "cut",
          partition_rows=30, **options)  # left partitions start inside each 50-row embed file
    whole, cut = (pd.read_parquet(tmp_path / name).sort_values(["left_id", "rank"]).reset_index(drop=True) for name in ("whole", "cut"))
    assert whole.equals(cut)


def test_self_match_excludes_self_and_min_score_filters(tmp_path, catalogs, cluster):
    _, catalog = catalogs
    result = match(catalog, None, tmp_path / "dupes", top_k=3, min_score=0.8, id_col="review_id", client=cluster.client, progress=False)
    pairs = pd.read_parquet(tmp_path / "dupes")
    assert (pairs["left_id"] != pairs["right_id"]).all()
    assert (pairs["score"] >= 0.8).all() and result.manifest["sides"]["self_match"]


def test_refuses_an_empty_side_and_vectors_of_another_model(tmp_path, catalogs, cluster, model_path):
    offers, catalog = catalogs
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"text": pd.Series([], dtype=str)}).to_parquet(empty)
    with pytest.raises(InputError, match="no rows"):
        match(offers, empty, tmp_path / "m1", client=cluster.client, progress=False)
    embed(offers, tmp_path / "mean", client=cluster.client, progress=False)
    embed(catalog, tmp_path / "cls", pooling="cls", client=cluster.client, progress=False)
    with pytest.raises(InputError, match="not comparable: different pooling"):
        match(tmp_path / "mean", tmp_path / "cls", tmp_path / "m2", client=cluster.client, progress=False)


def test_duplicate_ids_are_kept_and_counted(tmp_path, cluster):
    texts = ["삼성 갤럭시 S24 256GB 블랙", "갤럭시 S24 256기가 검정", "애플 아이폰 15 128GB"]
    titles = pd.DataFrame({"sku": ["A", "A", "B"], "text": texts})
    titles.to_parquet(tmp_path / "t.parquet")
    result = match(tmp_path / "t.parquet", None, tmp_path / "m", top_k=1, id_col="sku", client=cluster.client, progress=False)
    pairs = pd.read_parquet(tmp_path / "m")
    assert len(pairs) == 3 and result.manifest["side_duplicate_ids"]["left"] == 1


def test_spec_aware_matching_tells_apart_titles_that_differ_in_one_spec(tmp_path, cluster):
    catalog = pd.DataFrame({
        "sku": ["s24-256-black", "s24-512-black", "s24-256-white", "s23-256-black"],
        "text": ["삼성 갤럭시 S24 256GB 블랙", "삼성 갤럭시 S24 512GB 블랙", "삼성 갤럭시 S24 256GB 화이트", "삼성 갤럭시 S23 256GB 블랙"],
    })
    offers = pd.DataFrame({
        "sku": ["want-s24-512-black", "want-s23-256-black", "want-s24-256-white"],
        "text": ["Galaxy S24 512기가 검정 자급제", "갤럭시 S23 256G Black 새상품", "삼성 S24 256 GB 흰색 [무료배송]"],
    })
    catalog.to_parquet(tmp_path / "catalog.parquet")
    offers.to_parquet(tmp_path / "offers.parquet")
    match(tmp_path / "offers.parquet", tmp_path / "catalog.parquet", tmp_path / "m", top_k=1, spec_aware=True,
          id_col="sku", client=cluster.client, progress=False)
    best = pd.read_parquet(tmp_path / "m").set_index("left_id")["right_id"]
    assert {left: best[left] for left in offers["sku"]} == {
        "want-s24-512-black": "s24-512-black", "want-s23-256-black": "s23-256-black", "want-s24-256-white": "s24-256-white",
    }


def test_ann_index_finds_what_exact_search_finds_on_small_data(tmp_path, catalogs, cluster):
    _, catalog = catalogs
    options = {"top_k": 5, "id_col": "review_id", "client": cluster.client, "progress": False}
    match(catalog, None, tmp_path / "exact", **options)
    match(tmp_path / "exact" / "_embeddings" / "left", None, tmp_path / "ann", index="ann", **options)
    exact, approximate = (pd.read_parquet(tmp_path / name)[["left_id", "right_id"]] for name in ("exact", "ann"))
    assert (approximate["left_id"] != approximate["right_id"]).all()
    assert len(exact.merge(approximate, on=["left_id", "right_id"])) / len(exact) >= 0.95
