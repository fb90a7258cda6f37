"""Product matching: quality with and without --spec-aware, and the cost of exact top-k at scale.

    python bench/match.py [--products 1500] [--scale 100000]

1. Quality: a synthetic Korean catalog (bench/catalog.py) and its seller offers, with
   known true matches, embedded for real and matched by ``kbatch match``; prints
   recall@1 and recall@5 with and without ``--spec-aware``.
2. Scale: ``--scale`` × ``--scale`` exact top-10, kbatch (blockwise, on the local cluster)
   against ``sentence_transformers.util.semantic_search`` (one process, all cores) on the
   same vectors: time and peak memory of each. The vectors are random unit vectors in the
   model's dimension: top-k cost does not depend on where the vectors came from, and
   embedding 2 × 100,000 titles first would take this CPU half an hour.
3. ``--index ann`` (faiss HNSW) against exact search on real vectors (NSMC reviews matched
   within themselves): time and recall@10. (Uniform random vectors are HNSW's worst case:
   on the 100,000 random vectors above it reached recall@10 0.50 in 412 s.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from catalog import make_catalog
from shared_data import default_reviews, read_reviews

from kbatch.commands.match import match
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.io.writer import MANIFEST, part_name
from kbatch.models.resolve import resolve_model

DIMENSION = 384
TOP_K = 10


def recall(matches: pd.DataFrame, truth: pd.Series, k: int) -> float:
    """Share of offers whose true product is among their first ``k`` matches."""
    hits = matches[matches["rank"] <= k].merge(truth.rename("true_id"), left_on="left_id", right_index=True)
    found = hits[hits["right_id"] == hits["true_id"]]["left_id"].nunique()
    return found / len(truth)


def quality(client, work: Path, products: int, quiet) -> None:
    catalog, offers = make_catalog(products, seed=0)
    catalog.rename(columns={"title": "text"}).to_parquet(work / "catalog.parquet")
    offers.rename(columns={"title": "text"}).drop(columns="product_id").to_parquet(work / "offers.parquet")
    truth = offers.set_index("offer_id")["product_id"]
    print(f"catalog {len(catalog):,} products, {len(offers):,} offers (bench/catalog.py, seed 0)")
    for spec_aware in (False, True):
        options = {"client": client, "progress": False, "top_k": 5, "spec_aware": spec_aware, "log": quiet}
        start = time.perf_counter()
        out = work / f"matches-{spec_aware}"
        for side, id_col in (("offers", "offer_id"), ("catalog", "product_id")):  # ids differ per side
            pd.read_parquet(work / f"{side}.parquet").rename(columns={id_col: "id"}).to_parquet(work / f"{side}-ids.parquet")
        match(work / "offers-ids.parquet", work / "catalog-ids.parquet", out, id_col="id", **options)
        seconds = time.perf_counter() - start
        found = pd.read_parquet(out)
        label = "--spec-aware" if spec_aware else "cosine only "
        print(f"  {label}  recall@1 {recall(found, truth, 1):.3f}  recall@5 {recall(found, truth, 5):.3f}  ({seconds:.1f} s)")


def write_vectors(directory: Path, vectors: np.ndarray, rows_per_file: int = 10_000) -> None:
    """Vectors laid out as a ``kbatch embed`` output (parts plus manifest), so match reuses them."""
    spec = resolve_model()
    directory.mkdir(parents=True, exist_ok=True)
    for index, start in enumerate(range(0, len(vectors), rows_per_file)):
        block = vectors[start : start + rows_per_file]
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), DIMENSION)
        ids = pa.array(np.arange(start, start + len(block)))
        pq.write_table(pa.table({"id": ids, "embedding": embedding}), directory / part_name(index))
    params = {"model": spec.fingerprint, "pooling": None, "normalize": True, "dtype": "float32", "quantize": None}
    manifest = {"command": "embed", "status": "complete", "params": params, "params_key": f"bench-{directory.name}",
                "model": spec.describe(), "rows_done": len(vectors), "duplicate_ids": 0}
    (directory / MANIFEST).write_text(json.dumps(manifest))


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIMENSION), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def semantic_search_run(left: str, right: str) -> tuple[float, int]:
    """In a child process: load both sides, run semantic_search top-10; seconds and peak MiB."""
    import torch
    from sentence_transformers import util

    torch.set_num_threads(os.cpu_count() or 1)
    queries = torch.from_numpy(np.load(left))
    corpus = torch.from_numpy(np.load(right))
    start = time.perf_counter()
    util.semantic_search(queries, corpus, top_k=TOP_K)
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def scale(client, work: Path, n: int) -> None:
    left, right = unit_vectors(n, 1), unit_vectors(n, 2)
    write_vectors(work / "left", left)
    write_vectors(work / "right", right)
    np.save(work / "left.npy", left)
    np.save(work / "right.npy", right)
    del left, right
    start = time.perf_counter()
    match(work / "left", work / "right", work / "scale-matches", top_k=TOP_K, client=client, progress=False)
    ours = time.perf_counter() - start
    worker_peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        theirs, their_peak = pool.apply(semantic_search_run, (str(work / "left.npy"), str(work / "right.npy")))
    total_peak = sum(worker_peaks.values()) + client_peak
    print(f"{n:,} x {n:,} exact top-{TOP_K}, dimension {DIMENSION}:")
    print(f"  kbatch match (2 workers x 1 thread)  {ours:7.1f} s  peak {total_peak:,} MiB "
          f"(workers {sorted(worker_peaks.values())}, client {client_peak:,})")
    print(f"  semantic_search (1 process, {os.cpu_count()} threads) {theirs:7.1f} s  peak {their_peak:,} MiB")
    print(f"  time ratio semantic_search / kbatch: {theirs / ours:.2f}x")


def ann_recall(client, work: Path, data: str, rows: int, quiet) -> None:
    """--index ann against exact search on real vectors: NSMC reviews matched within themselves."""
    reviews = read_reviews(data, ["review_id", "text"]).head(rows)
    reviews.to_parquet(work / "reviews.parquet")
    options = {"top_k": TOP_K, "id_col": "review_id", "client": client, "progress": False, "log": quiet}
    match(work / "reviews.parquet", None, work / "exact", **options)  # embeds once, into exact/_embeddings/left
    vectors = work / "exact" / "_embeddings" / "left"
    start = time.perf_counter()
    match(vectors, None, work / "exact-again", **options)
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    match(vectors, None, work / "ann", index="ann", **options)
    ann_seconds = time.perf_counter() - start
    exact = pd.read_parquet(work / "exact", columns=["left_id", "right_id"])
    found = pd.read_parquet(work / "ann", columns=["left_id", "right_id"])
    recall_at_10 = len(exact.merge(found, on=["left_id", "right_id"])) / len(exact)
    print(f"{rows:,} NSMC reviews matched within themselves (real vectors), top-{TOP_K}:")
    print(f"  exact {exact_seconds:.1f} s; --index ann (faiss HNSW, build + search) {ann_seconds:.1f} s; "
          f"recall@{TOP_K} vs exact {recall_at_10:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1500, help="catalog products for the quality part (default: 1,500; 0 skips)")
    parser.add_argument("--scale", type=int, default=100_000, help="rows per side for the scale part (default: 100,000; 0 skips)")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet for the ANN part")
    parser.add_argument("--ann-rows", type=int, default=10_000, help="NSMC reviews for the ANN recall part (default: 10,000; 0 skips)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        if args.products:
            with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
                quality(cluster.client, Path(tmp), args.products, quiet)
        if args.scale:
            with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:  # fresh workers: clean peaks
                scale(cluster.client, Path(tmp), args.scale)
        if args.ann_rows:
            with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
                ann_recall(cluster.client, Path(tmp), args.data, args.ann_rows, quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
