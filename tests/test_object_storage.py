"""Inputs and outputs on object storage: ``s3://`` through the same commands, against a real
S3 server on 127.0.0.1 (moto's, tests/s3.py), read and written by the workers themselves."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kbatch import embed, match, tokenize, topics
from kbatch.engine.config import ClusterConfig
from kbatch.errors import OutputConflictError, OutputLockedError
from kbatch.io.lock import output_lock
from kbatch.vectors.columns import vector_matrix

ONE_WORKER = ClusterConfig(n_workers=1, dashboard_address=":0")


def put_parquet(bucket, key: str, frame: pd.DataFrame, row_group_size: int) -> str:
    with bucket.fs.open(bucket.path(key), "wb") as handle:
        frame.to_parquet(handle, row_group_size=row_group_size)
    return bucket.path(key)


def vectors(table) -> np.ndarray:
    return vector_matrix(table.column("embedding").combine_chunks())[0]


def test_embed_reads_and_writes_s3_as_it_does_local_disk(tmp_path, reviews, s3):
    source = put_parquet(s3, "nsmc/reviews.parquet", reviews.head(60), row_group_size=20)
    reviews.head(60).to_parquet(tmp_path / "reviews.parquet", row_group_size=20)

    on_s3 = embed(source, s3.path("features/emb"), id_col="review_id", partition_rows=20, cluster=ONE_WORKER, progress=False)
    local = embed(tmp_path / "reviews.parquet", tmp_path / "emb", id_col="review_id", partition_rows=20, cluster=ONE_WORKER,
                  progress=False)

    names = sorted(name.rsplit("/", 1)[1] for name in s3.fs.ls(s3.path("features/emb")))
    assert names == ["_kbatch.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]  # no temporary object
    assert not s3.fs.exists(s3.path("features/emb.lock"))
    written = pq.read_table(s3.path("features/emb"))
    assert np.array_equal(vectors(written), vectors(pq.read_table(tmp_path / "emb")))
    assert written.column("id").to_pylist() == reviews.head(60).review_id.tolist()
    manifest = json.loads(s3.fs.cat_file(s3.path("features/emb/_kbatch.json")))
    assert manifest["status"] == "complete" and manifest["input"]["sha256"] == local.manifest["input"]["sha256"]
    assert on_s3.output == s3.path("features/emb") and manifest["input"]["files"][0]["path"] == source


def test_a_rerun_on_s3_resumes_and_recomputes_only_what_is_missing(tmp_path, reviews, s3):
    source = put_parquet(s3, "reviews.parquet", reviews.head(60), row_group_size=20)
    output = s3.path("tokens")
    options = {"partition_rows": 20, "cluster": ONE_WORKER, "progress": False}
    first = tokenize(source, output, **options)
    s3.fs.rm(s3.path("tokens/part-00001.parquet"))  # as if the run had been killed before writing it

    again = tokenize(source, output, **options)

    assert (first.manifest["partitions_done"], again.manifest["partitions_done"], again.manifest["partitions_reused"]) == (3, 1, 2)
    reviews.head(60).to_parquet(tmp_path / "reviews.parquet", row_group_size=20)
    uninterrupted = tokenize(tmp_path / "reviews.parquet", tmp_path / "tokens", **options)
    assert pq.read_table(output).column("tokens").to_pylist() == pq.read_table(uninterrupted.output).column("tokens").to_pylist()


def test_the_manifest_names_each_objects_version_and_a_rewrite_of_the_same_size_is_computed_again(tmp_path, reviews, s3):
    frame = reviews.head(40).reset_index(drop=True)
    source = s3.path("reviews.parquet")
    write = {"row_group_size": 20, "compression": None, "use_dictionary": False, "write_statistics": False}
    with s3.fs.open(source, "wb") as handle:
        frame.to_parquet(handle, **write)
    options = {"partition_rows": 20, "cluster": ONE_WORKER, "progress": False}
    first = tokenize(source, s3.path("tokens"), **options)
    before = pq.read_table(first.output).column("tokens").to_pylist()
    edited = frame.copy()
    edited.loc[22, "text"] = "재미없습니다."  # was 재미있습니다.: the opposite review, in as many bytes
    with s3.fs.open(source, "wb") as handle:
        edited.to_parquet(handle, **write)
    assert s3.fs.size(source) == first.manifest["input"]["files"][0]["bytes"]

    again = tokenize(source, s3.path("tokens"), **options)

    versions = [run.manifest["input"]["files"][0]["version"] for run in (first, again)]
    assert versions[0] != versions[1] and versions[1] == s3.fs.info(source)["ETag"].strip('"')
    assert (again.manifest["partitions_reused"], again.manifest["partitions_done"]) == (1, 1)
    edited.to_parquet(tmp_path / "edited.parquet", **write)
    fresh = tokenize(tmp_path / "edited.parquet", tmp_path / "tokens", **options)
    after, expected = (pq.read_table(run.output).column("tokens").to_pylist() for run in (again, fresh))
    assert after == expected and after[22] != before[22]


def test_one_writer_per_output_on_s3(s3):
    output = s3.path("emb")
    with output_lock(output):
        assert s3.fs.exists(s3.path("emb.lock"))
        with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}.*delete it once that run is gone"), output_lock(output):
            pass
    assert not s3.fs.exists(s3.path("emb.lock"))
    with output_lock(output):  # released: the next run takes it
        pass


def readme_s3_commands() -> list[list[str]]:
    """The README's ``python -m kbatch ... s3://`` command lines, as written."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Object storage", 1)[1].split("\n## ", 1)[0]
    return [shlex.split(line) for line in section.splitlines() if line.startswith("python -m kbatch ") and "s3://" in line]


def test_the_readme_s3_commands_run_as_written(reviews, s3):
    commands = readme_s3_commands()
    assert [c[3] for c in commands] == ["tokenize", "embed"]
    for bucket in ("reviews", "features"):  # the README's own bucket names, on the test server
        if s3.fs.exists(f"s3://{bucket}"):
            s3.fs.rm(f"s3://{bucket}", recursive=True)
        s3.fs.mkdir(f"s3://{bucket}")
    with s3.fs.open("s3://reviews/nsmc/part-0.parquet", "wb") as handle:
        reviews.head(40).to_parquet(handle, row_group_size=20)

    for command in commands:
        done = subprocess.run([sys.executable, *command[1:], "--no-progress"], capture_output=True, text=True, timeout=300,
                              env=os.environ)
        assert done.returncode == 0, done.stderr
        output = command[command.index("-o") + 1]
        assert done.stdout.startswith(f"kbatch {command[3]}: 40 rows (0 skipped; ") and done.stdout.rstrip().endswith(f"-> {output}")
        assert pq.read_table(output).column("id").to_pylist() == reviews.head(40).review_id.tolist()


def test_match_on_s3_with_specs_and_last_nights_matches_equals_matching_locally(tmp_path, s3):
    examples = Path(__file__).resolve().parents[1] / "examples"
    offers = put_parquet(s3, "offers/dt=2026-11-26/part-0.parquet", pd.read_parquet(examples / "offers.parquet"), 100)
    catalog = put_parquet(s3, "catalog/latest/part-0.parquet", pd.read_parquet(examples / "catalog.parquet"), 100)
    options = {"text_col": "title", "id_col": "sku", "top_k": 3, "spec_aware": True, "cluster": ONE_WORKER, "progress": False}

    night = match(offers, catalog, s3.path("matches/2026-11-26"), **options)
    local = match(examples / "offers.parquet", examples / "catalog.parquet", tmp_path / "matches", **options)
    again = match(offers, catalog, s3.path("matches/2026-11-27"), previous=s3.path("matches/2026-11-26"), **options)

    on_s3 = pd.read_parquet(s3.path("matches/2026-11-26"))
    pd.testing.assert_frame_equal(on_s3, pd.read_parquet(tmp_path / "matches"))
    assert len(on_s3) == 420 * 3
    assert night.manifest["counts"] == local.manifest["counts"]
    assert again.manifest["counts"]["kept_from_previous"] == 420  # nothing changed: last night's matches, read from S3
    pd.testing.assert_frame_equal(pd.read_parquet(s3.path("matches/2026-11-27")), on_s3)


def test_the_embedding_cache_on_s3_serves_the_second_night(reviews, s3):
    source = put_parquet(s3, "reviews.parquet", reviews.head(40), row_group_size=20)
    options = {"cache": s3.path("cache"), "partition_rows": 20, "cluster": ONE_WORKER, "progress": False}
    cold = embed(source, s3.path("emb-1"), **options)
    warm = embed(source, s3.path("emb-2"), **options)
    assert (cold.manifest["counts"]["cache_misses"], warm.manifest["counts"]["cache_hits"]) == (40, 40)
    assert np.array_equal(vectors(pq.read_table(s3.path("emb-1"))), vectors(pq.read_table(s3.path("emb-2"))))


def test_topics_on_s3_keep_their_ids_the_next_night(s3):
    examples = Path(__file__).resolve().parents[1] / "examples"
    catalog = put_parquet(s3, "catalog.parquet", pd.read_parquet(examples / "catalog.parquet"), 100)
    options = {"text_col": "title", "id_col": "sku", "method": "kmeans", "n_topics": 5, "fit_sample": 200, "cluster": ONE_WORKER,
               "progress": False}
    first = topics(catalog, s3.path("topics/night-1"), **options)
    second = topics(catalog, s3.path("topics/night-2"), previous=s3.path("topics/night-1"), seed=1, **options)

    assert first.manifest["counts"] == {"topics": 5, "outliers": 0}
    assert len(pd.read_parquet(s3.path("topics/night-1/doc_topics"))) == 200
    assert second.manifest["topic_ids"]["kept"] >= 4  # the same corpus: its topics continue under last night's ids
    assert s3.fs.exists(s3.path("topics/night-2/topics.parquet")) and not s3.fs.exists(s3.path("topics/night-2.lock"))


def test_an_output_among_the_inputs_on_s3_is_refused_before_anything_runs(reviews, s3):
    put_parquet(s3, "data/part-0.parquet", reviews.head(10), row_group_size=10)
    with pytest.raises(OutputConflictError, match="inside the input directory"):
        tokenize(s3.path("data"), s3.path("data/tokens"), cluster=ONE_WORKER, progress=False)
    with pytest.raises(OutputConflictError, match="is the directory of input file"):
        tokenize(s3.path("data/part-0.parquet"), s3.path("data"), cluster=ONE_WORKER, progress=False)
    assert s3.fs.ls(s3.path("data"), detail=False) == [f"{s3.name}/data/part-0.parquet"]  # nothing written, no lock left
