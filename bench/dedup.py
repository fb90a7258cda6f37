"""``kbatch dedup`` at scale: recall of duplicate pairs against exact all-pairs search, and 1M rows.

    python bench/dedup.py [--work DIR] [--rows 1000000] [--no-recall]

1. Recall on real vectors: NSMC reviews (``/work/shared/data/nsmc/reviews_100k.parquet``,
   embedded once with use-m3 into WORK). Exact all-pairs search (blockwise, every pair) finds
   the pairs of distinct normalized texts with cosine ≥ 0.95; for several cluster counts and
   soft assignments, the k-means of :mod:`kbatch.duplicates.clusters` (the same fit, sample and
   assignment the command uses) says which of them share a cluster, i.e. are compared.
   Then ``kbatch dedup`` itself runs at its defaults and the pairs it puts in one group are counted.
2. Scale: ``--rows`` rows made of the real vectors plus noise, as the topics bench makes them
   (each review repeated, each copy with a light variation of text; a third of copies with
   little noise, so they are near-duplicates of each other, the rest with the topics bench's
   noise, so they are not): time, peak memory of every worker, duplicate share.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from kbatch.duplicates.clusters import default_clusters, fit_centroids, nearest, sample_size
from kbatch.duplicates.exact import dedup_keys
from kbatch.duplicates.seen import seen_by_model
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import resolve_model
from kbatch.vectors.columns import read_vectors, vector_matrix

NSMC = Path("/work/shared/data/nsmc/reviews_100k.parquet")
THRESHOLD = 0.95
CLUSTERS = (100, 316, 1000)
ASSIGNMENTS = (1, 2, 3)
ENDINGS = ("", " ㅋㅋ", "!!", " 진짜", "...", " 강추", "ㅎㅎ", " 별로")
NEAR_SHARE, NEAR_NOISE, FAR_NOISE = 1 / 3, 0.005, 0.02


def peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def in_child(function, *args):
    """``function(*args)`` in a fresh spawned process, so its peak memory is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def kbatch_dedup(source: str, output: str, options: dict) -> dict:
    """``dedup`` on its own fresh local cluster: seconds, manifest, peaks of client and workers."""
    from kbatch.commands.dedup import dedup

    with open(os.devnull, "w") as quiet:
        start = time.perf_counter()
        with open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
            result = dedup(source, output, client=cluster.client, progress=False, log=quiet, overwrite=True, **options)
            workers = cluster.client.run(peak_mib)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "client_mib": peak_mib(), "worker_mib": sorted(workers.values()), "manifest": result.manifest}


def embedded(work: Path) -> str:
    target = work / "nsmc-100k-emb"
    if not (target / "_kbatch.json").is_file():
        from kbatch.commands.embed import embed

        embed(str(NSMC), str(target), id_col="review_id", progress=False)
    return str(target)


def true_pairs(vectors: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) with cosine ≥ THRESHOLD: exact all-pairs search, block by block."""
    matrix = torch.from_numpy(vectors)
    found_i, found_j = [], []
    for a in range(0, len(vectors), block):
        scores = matrix[a : a + block] @ matrix[a:].T
        scores = torch.triu(scores, diagonal=1)
        i, j = torch.nonzero(scores >= THRESHOLD, as_tuple=True)
        found_i.append(i.numpy() + a)
        found_j.append(j.numpy() + a)
    return np.concatenate(found_i), np.concatenate(found_j)


def recall_bench(work: Path) -> None:
    vectors_dir = embedded(work)
    texts = pd.read_parquet(NSMC, columns=["text"]).text
    table = read_vectors(vectors_dir)
    vectors, has_vector = vector_matrix(table.column("embedding").combine_chunks())
    _, normalized, reasons = dedup_keys(texts)  # the semantic pass compares rows of distinct normalized text
    distinct = ~normalized.duplicated().to_numpy() & pd.isna(reasons) & has_vector
    seen = np.zeros(len(texts), dtype=bool)  # and only texts the model can see: the others' vectors say nothing
    seen[distinct] = seen_by_model(normalized[distinct].tolist(), resolve_model("use-m3"))
    unique = np.flatnonzero(distinct & seen)
    print(f"{int((distinct & ~seen).sum()):,} distinct texts use-m3 cannot see (only unknown pieces: exact duplicates only)")
    vectors = vectors[unique] / np.linalg.norm(vectors[unique], axis=1, keepdims=True)
    start = time.perf_counter()
    i, j = true_pairs(vectors)
    print(f"Recall at cosine >= {THRESHOLD}: {len(texts):,} NSMC reviews, {len(unique):,} distinct normalized texts; "
          f"exact all-pairs search found {len(i):,} pairs in {time.perf_counter() - start:.0f} s")
    print(f"  default clusters for {len(unique):,} rows: {default_clusters(len(unique))}")
    print(f"  {'clusters':>8} {'assignments':>11} {'pairs compared':>15} {'recall':>7} {'rows per cluster (mean, max)':>30}")
    rng = np.random.default_rng(0)
    for k in CLUSTERS:
        sample = vectors[rng.permutation(len(vectors))[: sample_size(k, len(vectors))]]
        assigned = nearest(vectors, fit_centroids(sample, k, 0), max(ASSIGNMENTS))
        for a in ASSIGNMENTS:
            shared = np.zeros(len(i), dtype=bool)
            for x in range(a):
                for y in range(a):
                    shared |= assigned[i, x] == assigned[j, y]
            sizes = np.bincount(assigned[:, :a].ravel(), minlength=k)
            print(f"  {k:>8} {a:>11} {int(shared.sum()):>15,} {shared.mean():>7.4f} {f'{sizes.mean():,.0f}, {sizes.max():,}':>30}")
    run = in_child(kbatch_dedup, str(NSMC), str(work / "nsmc-dedup"), {"embeddings": vectors_dir, "id_col": "review_id",
                                                                        "threshold": THRESHOLD})
    groups = pd.read_parquet(work / "nsmc-dedup" / "groups.parquet")
    ids = pd.read_parquet(NSMC, columns=["review_id"]).review_id.to_numpy()[unique]
    group_of = dict(zip(groups.id, groups.group_id, strict=True))
    together = np.array([group_of.get(ids[a], -1) == group_of.get(ids[b], -2) for a, b in zip(i, j, strict=True)])
    m = run["manifest"]
    print(f"  kbatch dedup (defaults: {m['clusters']['clusters']} clusters, {m['clusters']['assignments']} assignments): "
          f"{together.mean():.4f} of the pairs in one group; {m['counts']['exact_duplicates']:,} exact and "
          f"{m['counts']['near_duplicates']:,} near duplicates removed ({100 * m['duplicate_share']:.1f}%) in {run['seconds']:.0f} s")


def write_corpus(work: Path, n: int, rows_per_file: int = 50_000) -> tuple[str, str]:
    """``n`` rows: the NSMC reviews repeated, each copy with an ending and a noisy vector."""
    texts_dir, vectors_dir = work / f"scale-{n}-texts", work / f"scale-{n}-vectors"
    if (vectors_dir / "done").is_file():
        return str(texts_dir), str(vectors_dir)
    texts_dir.mkdir(exist_ok=True)
    vectors_dir.mkdir(exist_ok=True)
    base_text = pd.read_parquet(NSMC, columns=["text"]).text.to_numpy()
    base, _ = vector_matrix(read_vectors(embedded(work)).column("embedding").combine_chunks())
    rng = np.random.default_rng(0)
    for index, start in enumerate(range(0, n, rows_per_file)):
        rows = np.arange(start, min(n, start + rows_per_file))
        source = rows % len(base)
        endings = np.asarray(ENDINGS, dtype=object)[rng.integers(0, len(ENDINGS), len(rows))]
        texts = [t + e for t, e in zip(base_text[source], endings, strict=True)]
        scale = np.where(rng.random(len(rows)) < NEAR_SHARE, NEAR_NOISE, FAR_NOISE).astype(np.float32)[:, None]
        noisy = base[source] + rng.normal(0, 1, (len(rows), base.shape[1])).astype(np.float32) * scale
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        ids = pa.array([f"m{r}" for r in rows])
        pq.write_table(pa.table({"id": ids, "text": texts}), texts_dir / f"part-{index:05d}.parquet", row_group_size=20_000)
        embedding = pa.FixedSizeListArray.from_arrays(pa.array(noisy.ravel()), base.shape[1])
        pq.write_table(pa.table({"id": ids, "embedding": embedding}), vectors_dir / f"part-{index:05d}.parquet", row_group_size=20_000)
    (vectors_dir / "done").touch()
    return str(texts_dir), str(vectors_dir)


def scale_bench(work: Path, n: int) -> None:
    start = time.perf_counter()
    texts, vectors = write_corpus(work, n)
    print(f"\nScale: {n:,} rows (real vectors plus noise; written in {time.perf_counter() - start:.0f} s)")
    run = in_child(kbatch_dedup, texts, str(work / f"scale-{n}-dedup"), {"embeddings": vectors, "id_col": "id", "threshold": THRESHOLD})
    m = run["manifest"]
    steps = ", ".join(f"{k} {v:.0f}" for k, v in m["seconds"].items() if k != "total")
    print(f"  {run['seconds']:.0f} s ({n / run['seconds']:,.0f} rows/s; {steps} s); clusters {m['clusters']}")
    print(f"  duplicate share {100 * m['duplicate_share']:.2f}% ({m['counts']['exact_duplicates']:,} exact, "
          f"{m['counts']['near_duplicates']:,} near, {m['counts']['groups']:,} groups)")
    print(f"  peak MiB: client {run['client_mib']:,}, workers {run['worker_mib']}; "
          f"largest worker {max(run['worker_mib']) / 1024:.2f} GiB (bar: 4 GiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="work folder (kept: the embedded reviews and the corpus are reused)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scale run (default: 1,000,000; 0: skip)")
    parser.add_argument("--no-recall", action="store_true", help="skip the recall section")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.no_recall:
            recall_bench(work)
        if args.rows:
            scale_bench(work, args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
