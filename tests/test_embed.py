"""kbatch.commands.embed on real Korean reviews, on a real local Dask cluster."""

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch.commands.embed import embed
from kbatch.errors import ModelError, OutputConflictError
from kbatch.models.resolve import resolve_model


def run(source, output, cluster, **options):
    return embed(source, output, client=cluster.client, progress=False, **options)


def vectors(frame: pd.DataFrame) -> np.ndarray:
    return np.stack(frame["embedding"].to_numpy())


@pytest.fixture(scope="module")
def plain_vectors(reviews, model_path):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu", trust_remote_code=True)  # use-m3's modules are kbatch's
    return model.encode(reviews["text"].tolist(), normalize_embeddings=True)


def test_embeddings_equal_sentence_transformers(tmp_path, reviews_file, reviews, plain_vectors, cluster):
    result = run(reviews_file, tmp_path / "emb", cluster, id_col="review_id")
    out = pd.read_parquet(tmp_path / "emb")
    assert out["id"].tolist() == reviews["review_id"].tolist()
    cosine = (vectors(out) * plain_vectors).sum(axis=1)
    assert cosine.min() >= 0.999
    assert result.manifest["rows_done"] == 300


def test_output_follows_the_contract(tmp_path, reviews_file, cluster):
    run(reviews_file, tmp_path / "emb", cluster)
    files = sorted(p.name for p in (tmp_path / "emb").iterdir())
    assert files == ["_kbatch.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    schema = pq.read_schema(tmp_path / "emb" / "part-00000.parquet")
    embedding = schema.field("embedding").type
    assert pa.types.is_fixed_size_list(embedding) and embedding.value_type == pa.float32() and embedding.list_size == 512
    assert str(schema.field("n_tokens").type) == "int32" and str(schema.field("truncated").type) == "bool"
    meta = json.loads(schema.metadata[b"kbatch"])
    assert meta["model"]["name"] == "use-m3-ko" and meta["pooling"] == "mean_sqrt_len_tokens" and meta["dimension"] == 512
    manifest = json.loads((tmp_path / "emb" / "_kbatch.json").read_text())
    assert manifest["status"] == "complete" and manifest["rows_in"] == 300
    assert set(manifest["versions"]) >= {"dask", "torch", "sentence-transformers"}
    assert manifest["stage_seconds"]["Encode"] > 0


def test_rerun_recomputes_only_a_deleted_partition(tmp_path, reviews_file, cluster):
    first = run(reviews_file, tmp_path / "emb", cluster)
    before = pd.read_parquet(tmp_path / "emb")
    (tmp_path / "emb" / "part-00001.parquet").unlink()
    kept = (tmp_path / "emb" / "part-00000.parquet").stat().st_mtime_ns
    second = run(reviews_file, tmp_path / "emb", cluster)
    assert (first.manifest["partitions_done"], second.manifest["partitions_done"]) == (3, 1)
    assert second.manifest["partitions_reused"] == 2
    assert (tmp_path / "emb" / "part-00000.parquet").stat().st_mtime_ns == kept
    after = pd.read_parquet(tmp_path / "emb")
    assert after["id"].tolist() == before["id"].tolist()
    np.testing.assert_allclose(vectors(after), vectors(before), atol=1e-6)
    third = run(reviews_file, tmp_path / "emb", cluster)
    assert third.summary().startswith("embed: nothing to do, all 3 partitions of 300 rows are complete")


def test_another_model_is_refused_on_the_same_output(tmp_path, reviews_file, model_path, cluster):
    run(reviews_file, tmp_path / "emb", cluster)
    other = shutil.copytree(model_path, tmp_path / "other-model")
    (other / "NOTE.txt").write_text("another model")
    with pytest.raises(OutputConflictError, match="`overwrite`"):
        run(reviews_file, tmp_path / "emb", cluster, model=str(other))
    result = run(reviews_file, tmp_path / "emb", cluster, model=str(other), overwrite=True)
    assert result.manifest["model"]["path"] == str(other)


def test_bad_rows_are_kept_and_counted(tmp_path, cluster):
    texts = ["정말 재밌어요", None, "", "   \t", "최고의 영화 " * 20_000, "감동\x00적인 결말"]
    source = tmp_path / "bad.parquet"
    pd.DataFrame({"sku": ["a", "b", "c", "d", "e", "a"], "text": texts}).to_parquet(source)
    result = run(source, tmp_path / "emb", cluster, id_col="sku")
    out = pd.read_parquet(tmp_path / "emb")
    assert out["id"].tolist() == ["a", "b", "c", "d", "e", "a"]
    assert out["embedding"].isna().tolist() == [False, True, True, True, False, False]
    assert out["truncated"].tolist() == [False, False, False, False, True, False]
    assert out["n_tokens"].iloc[4] == 512
    assert result.manifest["rows_skipped"] == {"empty_text": 2, "null_text": 1}
    assert result.manifest["duplicate_ids"] == 1
    assert "3 skipped: 2 empty_text, 1 null_text" in result.summary()


def test_float16_cls_pooling_and_raw_vectors(tmp_path, reviews_file, cluster):
    run(reviews_file, tmp_path / "emb", cluster, dtype="float16", pooling="cls", normalize=False)
    schema = pq.read_schema(tmp_path / "emb" / "part-00000.parquet")
    assert schema.field("embedding").type.value_type == pa.float16()
    norms = np.linalg.norm(vectors(pd.read_parquet(tmp_path / "emb")).astype(np.float32), axis=1)
    assert json.loads(schema.metadata[b"kbatch"])["pooling"] == "cls"
    assert abs(norms.mean() - 1) > 0.05


def test_int8_vectors_stay_close_to_exact(tmp_path, reviews_file, reviews, cluster):
    from sentence_transformers import SentenceTransformer

    minilm = resolve_model("all-MiniLM-L6-v2")
    exact = SentenceTransformer(minilm.path, device="cpu").encode(reviews["text"].tolist(), normalize_embeddings=True)
    result = run(reviews_file, tmp_path / "emb", cluster, model=minilm.name, quantize="int8")
    cosine = (vectors(pd.read_parquet(tmp_path / "emb")) * exact).sum(axis=1)
    assert cosine.mean() >= 0.97 and cosine.min() >= 0.9
    assert result.manifest["params"]["quantize"] == "int8"
    with pytest.raises(ModelError, match="not one"):  # use-m3 is a CNN: nothing to export
        run(reviews_file, tmp_path / "m3", cluster, quantize="int8")
