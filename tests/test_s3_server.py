"""The S3 test endpoint is real (moto's server in its own process, see tests/s3.py), every
client reaches it through the environment alone, and what S3 promises about writes holds
there: an object appears whole at close, and a create-only-if-absent write refuses a key
that exists (what kbatch can lock an output with)."""

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

s3fs = pytest.importorskip("s3fs", reason="pip install 'kbatch[s3]'")

MiB = 2**20


def other_client() -> "s3fs.S3FileSystem":
    """A second client, made from the environment, sharing no cache with ``s3.fs``."""
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def test_a_client_made_from_the_environment_alone_talks_to_the_local_server(s3):
    fs = s3fs.S3FileSystem()  # no endpoint, no keys: AWS_ENDPOINT_URL and AWS_* supply them
    fs.pipe(s3.path("hello.txt"), "안녕하세요".encode())

    assert fs.s3.meta.endpoint_url == s3.endpoint == os.environ["AWS_ENDPOINT_URL"]
    assert s3.endpoint.startswith("http://127.0.0.1:")
    assert fs.cat(s3.path("hello.txt")).decode() == "안녕하세요"
    assert s3.name in other_client().ls("")


@pytest.mark.parametrize(("client", "storage_options"), [("s3fs", {}), ("pyarrow's own S3 filesystem", None)])
def test_pyarrow_writes_parquet_through_fsspec_and_pandas_reads_it_back(s3, client, storage_options):
    """pandas.read_parquet("s3://...") without storage_options does not use s3fs: it opens the
    URL with pyarrow's own S3 filesystem, which honours AWS_ENDPOINT_URL as well."""
    reviews = pa.table({"review_id": [1, 2], "text": ["재밌어요", "별로예요"]})
    pq.write_table(reviews, s3.path("x.parquet"), filesystem=s3.fs)

    back = pd.read_parquet(s3.path("x.parquet"), storage_options=storage_options)

    assert back["text"].tolist() == ["재밌어요", "별로예요"]


def read_on_a_worker(url: str) -> tuple[bytes, int, str]:
    """Runs in the Dask worker process: fsspec with nothing but that process's environment."""
    import fsspec

    with fsspec.open(url, "rb") as f:
        return f.read(), os.getpid(), os.environ["AWS_ENDPOINT_URL"]


def test_a_spawned_dask_worker_reaches_the_server_through_the_environment(s3):
    from distributed import Client, LocalCluster

    s3.fs.pipe(s3.path("partition-0.txt"), b"rows")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, Client(cluster) as client:
        data, pid, endpoint = client.submit(read_on_a_worker, s3.path("partition-0.txt")).result(timeout=60)

    assert data == b"rows"
    assert pid != os.getpid()
    assert endpoint == s3.endpoint


@pytest.mark.parametrize(("block_size", "size", "uploads"), [(None, 5 * MiB, "one PUT at close"),
                                                             (5 * MiB, 5 * MiB + 1, "multipart, a part sent before close")])
def test_an_object_written_through_open_appears_whole_at_close(s3, block_size, size, uploads):
    """s3fs buffers a write (50 MiB blocks by default): a 5 MiB file is one PUT at close. With
    5 MiB blocks a part goes to the server at flush, yet the object does not exist until
    close completes the multipart upload. A reader never sees part of it."""
    path = s3.path("part.0.parquet")
    data = os.urandom(size)
    reader = other_client()

    with s3.fs.open(path, "wb", block_size=block_size) as f:
        f.write(data)
        f.flush()
        assert len(f.parts or []) == (0 if block_size is None else 1)
        assert not reader.exists(path)
        assert reader.ls(s3.url) == []

    assert reader.cat(path) == data


def test_create_only_if_absent_writes_a_new_key(s3):
    with s3.fs.open(s3.path("_lock"), "xb") as f:
        f.write(b"run-1")

    assert s3.fs.cat(s3.path("_lock")) == b"run-1"


@pytest.mark.parametrize("how", ["open xb", "pipe_file mode=create"])
def test_create_only_if_absent_refuses_an_existing_key(s3, how):
    """s3fs sends If-None-Match: * (s3fs >= 2024.12); the server answers 412 and s3fs raises
    FileExistsError. The object is untouched."""
    path = s3.path("_lock")
    s3.fs.pipe(path, b"run-1")

    with pytest.raises(FileExistsError):
        if how == "open xb":
            with s3.fs.open(path, "xb") as f:
                f.write(b"run-2")
        else:
            s3.fs.pipe_file(path, b"run-2", mode="create")

    assert s3.fs.cat(path) == b"run-1"


def test_of_two_exclusive_writers_the_first_to_close_wins(s3):
    """The condition is checked when the object is committed (the PUT at close), not at open:
    both open, the second to close gets FileExistsError."""
    path = s3.path("_lock")
    first, second = s3.fs.open(path, "xb"), s3.fs.open(path, "xb")
    first.write(b"run-1")
    second.write(b"run-2")

    first.close()
    with pytest.raises(FileExistsError):
        second.close()

    assert s3.fs.cat(path) == b"run-1"


def test_an_exclusive_multipart_write_is_refused_at_close_and_leaves_its_upload_open(s3):
    """Over 5 MiB in 5 MiB blocks, the If-None-Match goes with CompleteMultipartUpload at close.
    The refusal holds, but s3fs (2026.9) does not abort the upload, whatever its docstring
    says: the caller has to (``fs.abort_mpu``), or parts are stored and billed. If this test
    fails because no upload is left, s3fs now aborts it itself."""
    path = s3.path("_lock")
    s3.fs.pipe(path, b"run-1")

    with pytest.raises(FileExistsError), s3.fs.open(path, "xb", block_size=5 * MiB) as f:
        f.write(b"\0" * (5 * MiB + 1))

    assert s3.fs.cat(path) == b"run-1"
    left = s3.fs.list_multipart_uploads(s3.name)
    assert [upload["Key"] for upload in left] == ["_lock"]
    s3.fs.abort_mpu(s3.name, "_lock", left[0]["UploadId"])
    assert s3.fs.list_multipart_uploads(s3.name) == []


def test_an_empty_exclusive_write_overwrites_an_existing_key(s3):
    """A file opened "xb" and closed with nothing written is created by s3fs's touch, which
    sends no If-None-Match (s3fs 2026.9): the existing object is replaced. A lock must have a
    body; or use pipe_file(path, b"", mode="create"), which does send the condition."""
    path = s3.path("_lock")
    s3.fs.pipe(path, b"run-1")

    with s3.fs.open(path, "xb"):
        pass
    assert s3.fs.cat(path) == b""

    with pytest.raises(FileExistsError):
        s3.fs.pipe_file(path, b"", mode="create")
