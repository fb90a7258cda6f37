"""Shared fixtures: real Korean reviews, the packaged model, one warm local cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def reviews() -> pd.DataFrame:
    """300 NSMC movie reviews (CC0) from examples/reviews.parquet."""
    return pd.read_parquet(EXAMPLES / "reviews.parquet").head(300)


@pytest.fixture
def reviews_file(tmp_path, reviews) -> Path:
    path = tmp_path / "reviews.parquet"
    reviews.to_parquet(path, row_group_size=100)
    return path


@pytest.fixture(scope="session")
def model_path() -> str:
    from kbatch.models.resolve import resolve_model

    return resolve_model().path


@pytest.fixture(scope="session")
def cluster():
    """A local cluster kept for the whole session, so model loading is paid once."""
    from kbatch.engine.cluster import open_cluster
    from kbatch.engine.config import ClusterConfig

    with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as running:
        yield running


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """The URL of a real S3 server (moto's) on 127.0.0.1, one for the session: see tests/s3.py."""
    from s3 import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A fresh bucket on the session's S3 server, with the environment set (``AWS_ENDPOINT_URL``
    and credentials) so that every S3 client finds it: s3fs, pyarrow, and processes started
    during the test, such as spawned Dask workers. Yields a ``s3.Bucket``."""
    s3fs = pytest.importorskip("s3fs", reason="pip install 'kbatch[s3]'")
    import fsspec.config
    from s3 import CLEARED, Bucket, bucket_name, s3_environment

    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    # fsspec's own config (FSSPEC_S3_* at import, ~/.config/fsspec) would override the environment.
    monkeypatch.delitem(fsspec.config.conf, "s3", raising=False)
    # A cached S3FileSystem keeps the endpoint and credentials it was made with.
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        fs = s3fs.S3FileSystem()
        bucket = Bucket(url=f"s3://{bucket_name()}", fs=fs, endpoint=s3_endpoint)
        fs.mkdir(bucket.url)
        yield bucket
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
