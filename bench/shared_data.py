"""Where the benches find the project's shared Korean data (NSMC reviews, KorSTS).

``$KBATCH_SHARED_DATA`` if set, else ``../shared/data`` beside the repository, as on the
development machines. A missing file ends the bench with one line saying what to pass.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

NSMC_REVIEWS = "nsmc/reviews_100k.parquet"


def shared_data_dir() -> Path:
    return Path(os.environ.get("KBATCH_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def default_reviews() -> str:
    return str(shared_data_dir() / NSMC_REVIEWS)


def read_reviews(path: str | os.PathLike[str], columns: list[str]) -> pd.DataFrame:
    """The NSMC reviews Parquet, or exit with a message naming ``--data`` and ``KBATCH_SHARED_DATA``."""
    if not Path(path).is_file():
        sys.exit(f"bench: no NSMC reviews at {path}; pass --data FILE or set KBATCH_SHARED_DATA to the shared data folder")
    return pd.read_parquet(path, columns=columns)
