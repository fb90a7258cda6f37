"""The nightly product-matching job with the embedding cache: night 2 embeds only what is new.

    python bench/incremental.py [--rows 50000] [--changed 0.01] [--work DIR]

Night 1 embeds a synthetic Korean catalog (bench/catalog.py) of ``--rows`` titles into an
empty cache. Night 2 is the same table with ``--changed`` of its rows changed: half of
them existing rows whose title changes (a seller word appended, e.g. " (리퍼)"), half new
rows appended; every other row as before. Both nights run ``embed`` on one local cluster
and share the cache directory; night 2 is embedded once more without the cache, as the
reference for what it would cost without kbatch's cache. The workers load the model on a
small warm-up run first, so no night pays for it.

Prints rows, rows embedded (cache misses), cache hits, the embed call's total seconds and
its Encode stage seconds per run; the ratio of night 2's to night 1's time (bar: at most
10%); and checks that night 2's vectors of unchanged rows equal night 1's exactly, and that
night 2 with the cache equals night 2 without it up to float noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from catalog import make_catalog

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.engine.manifest import RunResult
from kbatch.vectors.columns import vector_matrix

SUFFIXES = (" (리퍼)", " (전시상품)", " (재고정리)")  # words a seller appends to a changed listing
WARMUP_ROWS = 64
BAR = 0.10  # night 2 may take at most this share of night 1's embedding time
TOLERANCE = 1e-5  # cached against freshly encoded vectors: batching changes the float noise only
RUNS = ("night1", "night2", "night2-nocache", "warmup", "cache", "night1.parquet", "night2.parquet", "warmup.parquet")


def nights(rows: int, changed: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Night 1's and night 2's ``id, title`` tables and the ids whose title is the same on both."""
    n_changed = round(rows * changed)
    n_edited, n_new = n_changed // 2, n_changed - n_changed // 2
    catalog, _ = make_catalog(rows + n_new, seed)  # the first rows are the same whatever the count
    titles = catalog["title"].to_numpy(dtype=object)
    first = pd.DataFrame({"id": [f"p{i}" for i in range(rows)], "title": titles[:rows]})
    rng = np.random.default_rng(seed + 1)
    edited = np.sort(rng.choice(rows, n_edited, replace=False))
    second = first.copy()
    second.loc[edited, "title"] = [title + SUFFIXES[i % len(SUFFIXES)] for i, title in enumerate(second.loc[edited, "title"])]
    added = pd.DataFrame({"id": [f"p{i}" for i in range(rows, rows + n_new)], "title": titles[rows:]})
    second = pd.concat([second, added], ignore_index=True)
    assert second["id"].is_unique and second["title"].is_unique
    return first, second, np.delete(first["id"].to_numpy(dtype=object), edited)


def read_vectors(directory: Path) -> pd.DataFrame:
    """An embed output's vectors as a ``rows × dim`` float32 matrix indexed by ``id``."""
    table = pq.read_table(directory, columns=["id", "embedding"])
    matrix, present = vector_matrix(table.column("embedding").combine_chunks())
    assert present.all(), f"{directory}: {int((~present).sum())} rows without a vector"
    return pd.DataFrame(matrix, index=pd.Index(table.column("id").to_pylist(), name="id"))


def max_difference(left: pd.DataFrame, right: pd.DataFrame, ids) -> float:
    return float(np.abs(left.loc[ids].to_numpy() - right.loc[ids].to_numpy()).max())


def row(label: str, result: RunResult) -> tuple[str, int, int, int, float, float]:
    manifest = result.manifest
    counts = manifest["counts"]
    misses = counts.get("cache_misses", manifest["rows_in"])  # without the cache every row is encoded
    seconds = manifest["seconds"]["total"]
    return label, manifest["rows_in"], misses, counts.get("cache_hits", 0), seconds, manifest["stage_seconds"]["Encode"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000, help="catalog titles on night 1 (default: 50,000)")
    parser.add_argument("--changed", type=float, default=0.01,
                        help="share of rows changed on night 2: half edited, half new (default: 0.01)")
    parser.add_argument("--work", help="folder to keep the tables, outputs and cache in (default: a temporary one); "
                                       "this bench's own outputs from a previous run there are removed first")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    first, second, unchanged = nights(args.rows, args.changed)
    print(f"night 1: {len(first):,} catalog titles (bench/catalog.py, seed 0); night 2: {len(second) - len(first):,} new rows, "
          f"{len(first) - len(unchanged):,} titles changed, {len(unchanged):,} unchanged")
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in RUNS:  # a kept folder's old cache would make night 1 all hits
            if (work / name).is_dir():
                shutil.rmtree(work / name)
            else:
                (work / name).unlink(missing_ok=True)
        first.to_parquet(work / "night1.parquet", index=False)
        second.to_parquet(work / "night2.parquet", index=False)
        first.head(WARMUP_ROWS).to_parquet(work / "warmup.parquet", index=False)
        with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
            options = {"text_col": "title", "id_col": "id", "client": cluster.client, "progress": False, "log": quiet}
            embed(work / "warmup.parquet", work / "warmup", **options)  # every worker loads the model
            results = {
                "1": embed(work / "night1.parquet", work / "night1", cache=work / "cache", **options),
                "2": embed(work / "night2.parquet", work / "night2", cache=work / "cache", **options),
                "2 (no cache)": embed(work / "night2.parquet", work / "night2-nocache", cache=None, **options),
            }
        night1, night2, uncached = (read_vectors(work / name) for name in ("night1", "night2", "night2-nocache"))
        if args.work:
            print(f"tables, outputs and cache kept in {work}")
    table = [row(label, result) for label, result in results.items()]
    print(f"{'night':<13}{'rows':>9}  {'embedded (cache misses)':>23}  {'cache hits':>10}  {'embed seconds':>13}  {'encode seconds':>14}")
    for label, rows, misses, hits, seconds, encode in table:
        print(f"{label:<13}{rows:>9,}  {misses:>23,}  {hits:>10,}  {seconds:>13.1f}  {encode:>14.1f}")
    ratio = table[1][4] / table[0][4]
    print(f"night 2 / night 1 embedding time: {ratio:.1%} (bar: at most {BAR:.0%}: {'met' if ratio <= BAR else 'NOT met'})")
    print(f"night 2 / night 2 without the cache: {table[1][4] / table[2][4]:.1%} of the time, "
          f"encode {table[1][5] / table[2][5]:.1%}")
    other = {k: v for k, v in results["2"].manifest["stage_seconds"].items() if k != "Encode"}
    print("night 2 other stage seconds (summed over partitions): " + ", ".join(f"{k} {v:.1f}" for k, v in other.items()))
    same = max_difference(night1, night2, unchanged)
    noise = max_difference(night2, uncached, second["id"])
    print(f"unchanged rows, night 2 vs night 1: max abs difference {same:.3g} ({'identical' if same == 0 else 'NOT identical'})")
    print(f"night 2 with vs without the cache: max abs difference {noise:.3g} "
          f"({'within' if noise < TOLERANCE else 'NOT within'} {TOLERANCE:g})")
    return 0 if same == 0 and noise < TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
