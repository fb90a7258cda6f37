"""Inputs and outputs on object storage: ``s3://`` through the same commands, against a real
S3 server on 127.0.0.1 (moto's, tests/s3.py), read and written by the workers themselves."""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kbatch import dedup, embed, match, tokenize, topics
from kbatch.engine.config import ClusterConfig
from kbatch.errors import OutputConflictError, OutputLockedError
from kbatch.io.lock import output_lock
from kbatch.io.writer import part_name
from kbatch.vectors.columns import vector_matrix

ONE_WORKER = ClusterConfig(n_workers=1, dashboard_address=":0")


def put_parquet(bucket, key: str, frame: pd.DataFrame, row_group_size: int) -> str:
    with bucket.fs.open(bucket.path(key), "wb") as handle:
        frame.to_parquet(handle, row_group_size=row_group_size)
    return bucket.path(key)


def read_back(bucket, key: str) -> pd.DataFrame:
    """A Parquet dataset on the bucket, read with the bucket's own endpoint."""
    return pd.read_parquet(bucket.path(key), storage_options={"endpoint_url": bucket.endpoint})


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
    options = {"id_col": "review_id", "partition_rows": 20, "cluster": ONE_WORKER, "progress": False}
    first = tokenize(source, output, **options)
    s3.fs.rm([s3.path("tokens/part-00001.parquet"), s3.path("tokens/_kbatch.json")])  # as if killed before writing them

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


def holder(pid: int, host: str) -> bytes:
    """A lock object's body as a run writes it."""
    return json.dumps({"pid": pid, "host": host, "since": "2026-11-30T02:00:00+0900", "started": 1796000000.0}).encode()


def test_a_lock_object_left_by_a_dead_run_of_this_host_is_taken_over_but_not_one_from_another_host(s3):
    """S3 does not release a lock when its holder is killed: a holder of this host is known to be
    gone when its pid is (or belongs to a later process), one of another host is not."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    s3.fs.pipe(s3.path("emb.lock"), holder(dead.pid, socket.gethostname()))
    with output_lock(s3.path("emb")):
        assert json.loads(s3.fs.cat(s3.path("emb.lock")))["pid"] == os.getpid()
    assert not s3.fs.exists(s3.path("emb.lock"))

    s3.fs.pipe(s3.path("emb.lock"), holder(os.getpid(), socket.gethostname()))  # this pid, but started at another time
    with output_lock(s3.path("emb")):
        pass

    s3.fs.pipe(s3.path("emb.lock"), holder(dead.pid, "another-host"))
    with pytest.raises(OutputLockedError, match=f"pid {dead.pid} on another-host.*delete it once that run is gone"), \
            output_lock(s3.path("emb")):
        pass
    assert json.loads(s3.fs.cat(s3.path("emb.lock")))["host"] == "another-host"


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


def only_the_cluster_file_knows_the_endpoint(s3, monkeypatch) -> ClusterConfig:
    """One worker, sent to the S3 server by ``storage_options`` alone: no endpoint in the
    environment of this process or of the workers it spawns."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    s3.fs.clear_instance_cache()  # an S3 file system made earlier in this process keeps the endpoint it was made with
    return ClusterConfig(n_workers=1, dashboard_address=":0", storage_options={"s3": {"endpoint_url": s3.endpoint}})


def test_match_on_s3_with_specs_and_last_nights_matches_equals_matching_locally(tmp_path, s3, monkeypatch):
    examples = Path(__file__).resolve().parents[1] / "examples"
    offers = put_parquet(s3, "offers/dt=2026-11-26/part-0.parquet", pd.read_parquet(examples / "offers.parquet"), 100)
    catalog = put_parquet(s3, "catalog/latest/part-0.parquet", pd.read_parquet(examples / "catalog.parquet"), 100)
    cluster = only_the_cluster_file_knows_the_endpoint(s3, monkeypatch)
    options = {"text_col": "title", "id_col": "sku", "top_k": 3, "spec_aware": True, "cluster": cluster, "progress": False}

    night = match(offers, catalog, s3.path("matches/2026-11-26"), **options)
    local = match(examples / "offers.parquet", examples / "catalog.parquet", tmp_path / "matches", **options)
    again = match(offers, catalog, s3.path("matches/2026-11-27"), previous=s3.path("matches/2026-11-26"), **options)

    on_s3 = read_back(s3, "matches/2026-11-26")
    pd.testing.assert_frame_equal(on_s3, pd.read_parquet(tmp_path / "matches"))
    assert len(on_s3) == 420 * 3
    assert night.manifest["counts"] == local.manifest["counts"]
    assert again.manifest["counts"]["kept_from_previous"] == 420  # nothing changed: last night's matches, read from S3
    pd.testing.assert_frame_equal(read_back(s3, "matches/2026-11-27"), on_s3)

    match(offers, catalog, s3.path("matches/ann"), index="ann", **options)  # its HNSW index is uploaded, and read by the workers
    assert s3.fs.exists(s3.path("matches/ann/_index"))
    pd.testing.assert_frame_equal(read_back(s3, "matches/ann"), on_s3)  # 200 products: the graph finds every neighbour


def test_the_embedding_cache_on_s3_serves_the_second_night(reviews, s3):
    source = put_parquet(s3, "reviews.parquet", reviews.head(40), row_group_size=20)
    options = {"cache": s3.path("cache"), "partition_rows": 20, "cluster": ONE_WORKER, "progress": False}
    cold = embed(source, s3.path("emb-1"), **options)
    warm = embed(source, s3.path("emb-2"), **options)
    assert (cold.manifest["counts"]["cache_misses"], warm.manifest["counts"]["cache_hits"]) == (40, 40)
    assert np.array_equal(vectors(pq.read_table(s3.path("emb-1"))), vectors(pq.read_table(s3.path("emb-2"))))


def test_topics_on_s3_keep_their_ids_the_next_night(s3, monkeypatch):
    examples = Path(__file__).resolve().parents[1] / "examples"
    catalog = put_parquet(s3, "catalog.parquet", pd.read_parquet(examples / "catalog.parquet"), 100)
    cluster = only_the_cluster_file_knows_the_endpoint(s3, monkeypatch)
    options = {"text_col": "title", "id_col": "sku", "method": "kmeans", "n_topics": 5, "fit_sample": 200, "cluster": cluster,
               "progress": False}
    first = topics(catalog, s3.path("topics/night-1"), plot=s3.path("reports/topics-night-1.html"), **options)
    second = topics(catalog, s3.path("topics/night-2"), previous=s3.path("topics/night-1"), **options)

    assert first.manifest["counts"] == {"topics": 5, "outliers": 0}
    assert len(read_back(s3, "topics/night-1/doc_topics")) == 200
    assert "<svg" in s3.fs.cat(s3.path("reports/topics-night-1.html")).decode("utf-8")  # the map, uploaded whole
    assert second.manifest["topic_ids"] == {"previous": s3.path("topics/night-1"), "kept": 5, "new": 0}  # read back from S3
    assert s3.fs.exists(s3.path("topics/night-2/topics.parquet")) and not s3.fs.exists(s3.path("topics/night-2.lock"))


def test_dedup_on_s3_finds_the_catalogs_repeated_titles(s3, monkeypatch):
    examples = Path(__file__).resolve().parents[1] / "examples"
    titles = pd.read_parquet(examples / "catalog.parquet")
    catalog = put_parquet(s3, "catalog.parquet", pd.concat([titles, titles.head(20).assign(sku=lambda f: f.sku + "-again")]), 100)
    cluster = only_the_cluster_file_knows_the_endpoint(s3, monkeypatch)

    result = dedup(catalog, s3.path("dedup"), exact_only=True, text_col="title", id_col="sku", cluster=cluster, progress=False)

    assert result.manifest["counts"]["dropped"] == 20 + len(titles) - titles.title.nunique()
    assert len(read_back(s3, "dedup/kept")) == titles.title.nunique()


def test_an_output_among_the_inputs_on_s3_is_refused_before_anything_runs(reviews, s3):
    put_parquet(s3, "data/part-0.parquet", reviews.head(10), row_group_size=10)
    with pytest.raises(OutputConflictError, match="inside the input directory"):
        tokenize(s3.path("data"), s3.path("data/tokens"), cluster=ONE_WORKER, progress=False)
    with pytest.raises(OutputConflictError, match="is the directory of input file"):
        tokenize(s3.path("data/part-0.parquet"), s3.path("data"), cluster=ONE_WORKER, progress=False)
    assert s3.fs.ls(s3.path("data"), detail=False) == [f"{s3.name}/data/part-0.parquet"]  # nothing written, no lock left



NSMC = Path("/work/shared/data/nsmc/reviews_100k.parquet")


@pytest.fixture
def runs(tmp_path):
    """Starts ``python -m kbatch embed`` runs on one local worker each; whatever of them is
    still running at the end is killed."""
    started: list[subprocess.Popen] = []
    (tmp_path / "cluster.yaml").write_text("n_workers: 1\ndashboard_address: ':0'\n")

    def start_embed(source: str, output: str) -> subprocess.Popen:
        """A run in a session of its own: its process group is the client and its Dask worker."""
        command = [sys.executable, "-m", "kbatch", "embed", source, "-o", output, "--id-col", "review_id",
                   "--partition-rows", "10", "--cluster", str(tmp_path / "cluster.yaml"), "--no-progress"]
        started.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True, env=os.environ))
        return started[-1]

    yield start_embed
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def parts_on(bucket, output: str) -> list[str]:
    return [f"s3://{part}" for part in bucket.fs.glob(f"{output}/part-*.parquet", refresh=True)]


def kill_once_parts_appear(process: subprocess.Popen, bucket, output: str, at_least: int) -> None:
    """SIGKILL the whole run (client and workers), as a crash would, once ``at_least`` parts are on S3."""
    deadline = time.monotonic() + 120
    while len(parts_on(bucket, output)) < at_least:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no part was written"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def left_behind(bucket, output: str) -> list[str]:
    """What the output holds besides its parts and manifest, unfinished uploads included."""
    names = {name.rsplit("/", 1)[1] for name in bucket.fs.ls(output, detail=False, refresh=True)}
    uploads = [upload["Key"] for upload in bucket.fs.list_multipart_uploads(bucket.name)]
    return sorted(name for name in names if not name.startswith("part-") and name != "_kbatch.json") + uploads


def test_a_run_killed_mid_way_on_s3_resumes_to_the_output_of_an_uninterrupted_run(s3, runs, tmp_path, monkeypatch):
    """A crash (the client and its workers SIGKILLed) leaves its lock object behind: the rerun
    on the same host sees its holder is gone and takes it over, keeps the parts already
    written, and ends where a run that was never interrupted ends."""
    monkeypatch.setenv("KBATCH_LOG_DIR", str(tmp_path / "logs"))
    source = put_parquet(s3, "reviews.parquet", pd.read_parquet(NSMC).head(200), row_group_size=10)
    kill_once_parts_appear(runs(source, s3.path("emb")), s3, s3.path("emb"), at_least=3)
    written = len(parts_on(s3, s3.path("emb")))
    assert 3 <= written < 20 and s3.fs.exists(s3.path("emb.lock"))  # killed mid-way, holding its lock
    missing = next(name for name in (part_name(i) for i in range(20)) if s3.path(f"emb/{name}") not in parts_on(s3, s3.path("emb")))
    unfinished = s3.fs.open(s3.path(f"emb/{missing}"), "wb", autocommit=False)  # as a write killed before its commit
    unfinished.write(b"PAR1")
    unfinished.close()
    assert len(s3.fs.list_multipart_uploads(s3.name)) >= 1

    resumed, uninterrupted = runs(source, s3.path("emb")), runs(source, s3.path("once"))
    for process in (resumed, uninterrupted):
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err

    again, once = pq.read_table(s3.path("emb")), pq.read_table(s3.path("once"))
    assert again.column("id").to_pylist() == once.column("id").to_pylist() == pd.read_parquet(NSMC).head(200).review_id.tolist()
    assert np.array_equal(vectors(again), vectors(once))
    manifest = json.loads(s3.fs.cat_file(s3.path("emb/_kbatch.json")))
    assert (manifest["status"], manifest["partitions_total"], manifest["partitions_reused"]) == ("complete", 20, written)
    assert len(parts_on(s3, s3.path("emb"))) == len(parts_on(s3, s3.path("once"))) == 20
    assert left_behind(s3, s3.path("emb")) == [] and not s3.fs.exists(s3.path("emb.lock"))
