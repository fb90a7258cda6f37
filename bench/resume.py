"""What checking a resumed output by content costs, next to embedding it.

    python bench/resume.py [--rows 20000] [--edited 0.01] [--data DIR]

Embeds ``--rows`` NSMC reviews (shared data) into a fresh output, then runs the same command
twice more on one local cluster: once on the unchanged input (every partition is re-read and
hashed on the workers, none is encoded: "nothing to do"), and once after a run of ``--edited``
of the rows had their text changed in place (only the partitions holding them are encoded again).
Prints each run's seconds, the share of the first run that checking takes, how many
partitions each rerun encoded, and checks that the edited rerun equals a fresh embedding of
the edited input.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from shared_data import default_reviews, read_reviews

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig


def vectors(directory: Path) -> list:
    return pd.read_parquet(directory)["embedding"].map(list).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--edited", type=float, default=0.01, help="share of rows whose text changes before the last rerun")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (default: the shared data's)")
    args = parser.parse_args()
    reviews = read_reviews(args.data, ["review_id", "text"]).head(args.rows)
    quiet = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    with tempfile.TemporaryDirectory(prefix="kbatch-resume-") as scratch, \
            open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
        work = Path(scratch)
        source = work / "reviews.parquet"
        reviews.to_parquet(source, row_group_size=10_000)

        def run(output: str, **options) -> dict:
            return embed(source, work / output, id_col="review_id", client=cluster.client, progress=False, log=quiet, **options).manifest

        run("warmup", partition_rows=64)  # workers load the model before anything is timed
        first = run("emb")
        unchanged = run("emb")
        edits = round(len(reviews) * args.edited)
        first_edited = int(np.random.default_rng(0).integers(0, len(reviews) - edits + 1))
        rows = np.arange(first_edited, first_edited + edits)  # one seller's listings, say: a run of rows
        reviews.loc[rows, "text"] = reviews.loc[rows, "text"].fillna("") + " (수정됨)"
        reviews.to_parquet(source, row_group_size=10_000)
        edited = run("emb")
        fresh = run("fresh")
        same = vectors(work / "emb") == vectors(work / "fresh")

    print(f"{args.rows:,} reviews in {first['partitions_total']} partitions; {len(rows):,} rows edited")
    for name, manifest in (("first run", first), ("unchanged rerun", unchanged), ("edited rerun", edited)):
        seconds = manifest["seconds"]
        print(f"{name:16} {seconds['total']:7.2f} s  encoded {manifest['partitions_done']} partitions (checking {seconds['verify']:.2f} s)")
    print(f"{'fresh run':16} {fresh['seconds']['total']:7.2f} s")
    print(f"ratio: checking every partition = {unchanged['seconds']['verify'] / first['seconds']['total']:.3f}x the first run; "
          f"edited rerun = {edited['seconds']['total'] / fresh['seconds']['total']:.3f}x a fresh run")
    print(f"edited rerun equals a fresh run of the edited input: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
