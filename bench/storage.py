"""The cost of object storage and of many small files, measured side by side in one run.

    python bench/storage.py [--rows 5000] [--files 2000] [--rounds 2]

(a) ``kbatch embed`` local disk -> local disk against ``s3://`` -> ``s3://`` on the same
NSMC reviews, and ``kbatch match`` of the example offers against the example catalog both
ways, through a real S3 server on 127.0.0.1 (moto's, ``tests/s3.py``), on one local
cluster started after the S3 environment is set (so its workers inherit it) and warmed
first: the steady-state cost of the store. (b) ``kbatch tokenize`` (MeCab) on the same rows
as ``--files`` tiny Parquet files against one file, on local disk, at ``--rows`` and at
``--large-rows`` rows (the files' fixed cost, about 0.1 ms each, weighs less), on the warm
cluster (steady state) and as whole runs that start their own local cluster, as
``python -m kbatch tokenize`` does. Each way runs
``--rounds`` times, alternating; the best round is printed (wall seconds of the call, which
include planning, listing and the manifest). Checks that each pair of outputs is identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from shared_data import default_reviews, read_reviews

from kbatch.commands.embed import embed
from kbatch.commands.match import match
from kbatch.commands.tokenize import tokenize
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from s3 import CLEARED, bucket_name, moto_server, s3_environment  # the tests' S3 server, not a copy

ID = "review_id"
QUIET = open(os.devnull, "w")  # noqa: SIM115  (the whole-run clusters' startup lines, for the bench's lifetime)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def split_into_files(reviews: pd.DataFrame, folder: Path, files: int) -> tuple[str, str]:
    """``reviews`` as one Parquet file and as ``files`` tiny ones (in ``folder/tiny``)."""
    (folder / "tiny").mkdir(parents=True)
    reviews.to_parquet(folder / "one.parquet", index=False)
    for i, chunk in enumerate(np.array_split(np.arange(len(reviews)), files)):
        reviews.iloc[chunk].to_parquet(folder / "tiny" / f"part-{i:05d}.parquet", index=False)
    return str(folder / "one.parquet"), str(folder)


def timed(command, source: str, output: str, client, **options) -> tuple[float, dict]:
    """Seconds of one call on ``client``'s cluster, or, with no client, of a whole run that
    starts its own local cluster as ``python -m kbatch`` does."""
    cluster = {"client": client} if client is not None else {"cluster": ClusterConfig(dashboard_address=":0"), "log": QUIET}
    start = time.perf_counter()
    result = command(source, output, progress=False, overwrite=True, **{"id_col": ID, **cluster, **options})
    return time.perf_counter() - start, result.manifest


def best_of(rounds: int, ways: dict[str, tuple]) -> dict[str, tuple[float, dict]]:
    """Run every way ``rounds`` times, alternating so they share the machine's load; keep each way's fastest."""
    best: dict[str, tuple[float, dict]] = {}
    for _ in range(rounds):
        for name, (command, source, output, client, options) in ways.items():
            seconds, manifest = timed(command, source, output, client, **options)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, manifest)
    return best


def match_examples(folder: str, output: str, **options) -> object:
    """``kbatch match`` of ``folder``'s offers against its catalog (the README's example)."""
    return match(f"{folder}/offers.parquet", f"{folder}/catalog.parquet", output, text_col="title", top_k=5, **options)


def sorted_output(path: str) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("id", ignore_index=True)


def embeddings_differ(a: str, b: str) -> str:
    left, right = sorted_output(a), sorted_output(b)
    if not left["id"].equals(right["id"]):
        return "ids differ"
    gap = float(np.abs(np.stack(left["embedding"].to_numpy()) - np.stack(right["embedding"].to_numpy())).max())
    return "identical" if gap == 0 else f"max abs difference {gap:.2e}"


def frames_differ(a: str, b: str) -> str:
    left, right = sorted_output(a), sorted_output(b)
    return "identical" if left.equals(right) else "differ"


def matches_differ(a: str, b: str) -> str:
    """Pairs and ranks must be equal; scores to 1e-6 (BLAS may sum blocks of another shape in another order)."""
    left, right = (pd.read_parquet(p).sort_values(["left_id", "rank"], ignore_index=True) for p in (a, b))
    if not left.drop(columns="score").equals(right.drop(columns="score")):
        return "pairs differ"
    return "same pairs, scores within 1e-6" if np.allclose(left.score, right.score, atol=1e-6, rtol=0) else "scores differ"


def use_s3_server(endpoint: str) -> None:
    """Point every S3 client of this process, and of the processes it starts later, at ``endpoint``."""
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(s3_environment(endpoint))


def report(title: str, rows: list[tuple[str, float, dict]], n: int, ratio_name: str, check: str) -> None:
    print(f"\n{title}")
    print(f"{'way':44} {'seconds':>8} {'rows/s':>8} {'partitions':>10}")
    for name, seconds, manifest in rows:
        print(f"{name:44} {seconds:8.2f} {n / seconds:8.0f} {manifest['partitions_total']:10,}")
    print(f"{ratio_name}: {rows[1][1] / rows[0][1]:.2f}x the time; outputs: {check}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--files", type=int, default=2000, help="tiny Parquet files the tokenize input is split into")
    parser.add_argument("--large-rows", type=int, default=50_000, help="rows of the second tiny-files comparison")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (columns review_id, text)")
    args = parser.parse_args()

    reviews = read_reviews(args.data, [ID, "text"]).head(args.rows)
    n = len(reviews)
    work = tempfile.mkdtemp(prefix="kbatch-bench-")
    one = f"{work}/reviews.parquet"
    reviews.to_parquet(one, index=False)
    sizes = {rows: split_into_files(read_reviews(args.data, [ID, "text"]).head(rows), Path(work, f"rows-{rows}"), args.files)
             for rows in (n, args.large_rows)}

    import s3fs

    with moto_server() as endpoint:
        use_s3_server(endpoint)  # before the cluster starts: its spawned workers inherit it
        bucket = f"s3://{bucket_name()}"
        store = s3fs.S3FileSystem()
        store.mkdir(bucket)
        store.put_file(one, f"{bucket}/reviews.parquet")
        for name in ("offers.parquet", "catalog.parquet"):
            store.put_file(str(EXAMPLES / name), f"{bucket}/{name}")
        print(f"{n:,} NSMC reviews; S3: moto's server on {endpoint}; {os.cpu_count()} cores", flush=True)
        with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
            client = cluster.client
            embed(one, f"{work}/warm", id_col=ID, client=client, progress=False, partition_rows=max(n // 4, 1))  # model on the workers
            tokenize(one, f"{work}/warm-tokens", id_col=ID, client=client, progress=False)
            embeds = best_of(args.rounds, {
                "embed local -> local": (embed, one, f"{work}/emb", client, {}),
                "embed s3:// -> s3://": (embed, f"{bucket}/reviews.parquet", f"{bucket}/emb", client, {}),
            })
            matches = best_of(args.rounds, {
                "match local -> local": (match_examples, str(EXAMPLES), f"{work}/matches", client, {"id_col": "sku"}),
                "match s3:// -> s3://": (match_examples, bucket, f"{bucket}/matches", client, {"id_col": "sku"}),
            })
            tokens = {rows: best_of(args.rounds, {
                f"tokenize (MeCab) one file, {rows:,} rows": (tokenize, one_file, f"{folder}/tokens-one", client, {}),
                f"tokenize (MeCab) {args.files:,} tiny files": (tokenize, f"{folder}/tiny", f"{folder}/tokens-tiny", client, {}),
            }) for rows, (one_file, folder) in sizes.items()}
        whole = {rows: best_of(args.rounds, {
            f"tokenize one file, {rows:,} rows, whole run": (tokenize, one_file, f"{folder}/tokens-one", None, {}),
            f"tokenize {args.files:,} tiny files, whole run": (tokenize, f"{folder}/tiny", f"{folder}/tokens-tiny", None, {}),
        }) for rows, (one_file, folder) in sizes.items()}
        report("(a) embed, steady state, one local cluster", [(k, *v) for k, v in embeds.items()], n,
               "s3 / local", embeddings_differ(f"{work}/emb", f"{bucket}/emb"))
        report("(a) match, 420 offers x 200 products, steady state", [(k, *v) for k, v in matches.items()], 420,
               "s3 / local", matches_differ(f"{work}/matches", f"{bucket}/matches"))
        for rows, (_, folder) in sizes.items():
            same = frames_differ(f"{folder}/tokens-one", f"{folder}/tokens-tiny")
            report(f"(b) tokenize, local disk, {rows:,} rows, steady state", [(k, *v) for k, v in tokens[rows].items()], rows,
                   "tiny / one", same)
            report(f"(b) tokenize, local disk, {rows:,} rows, each run starting its local cluster (python -m kbatch)",
                   [(k, *v) for k, v in whole[rows].items()], rows, "tiny / one", same)
    return 0


if __name__ == "__main__":
    sys.exit(main())
