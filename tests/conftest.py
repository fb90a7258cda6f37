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
