"""kbatch embed against plain SentenceTransformer.encode on the same reviews, in one run.

    python bench/embed_vs_st.py --rows 5000 [--layouts] [--korsts ../shared/data/korsts/sts-test.tsv]

Prints sentences/s of each way, the ratio to plain encode, and the minimum cosine between
their vectors. With --korsts, also the KorSTS Spearman of exact and int8 vectors (the
cost of --quantize int8). With --layouts, compares local worker layouts.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from shared_data import default_reviews, read_reviews

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import is_transformer, resolve_model


def plain_encode(texts: list[str], model_path: str) -> tuple[np.ndarray, float]:
    import torch

    from kbatch.models.resolve import load_sentence_transformer
    torch.set_num_threads(os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_sentence_transformer(model_path, "cpu")  # the installed classes of a kbatch-built model
    model.encode(texts[:64], batch_size=32)
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    return vectors, time.perf_counter() - start


def vectors_of(output: str) -> np.ndarray:
    frame = pd.read_parquet(output).sort_values("id")
    return np.stack(frame["embedding"].to_numpy())


def kbatch_steady(cluster, source: str, output: str, **options) -> tuple[np.ndarray, float]:
    """Embed on a cluster whose workers already hold the model: the rate a long run sustains."""
    warm = f"{output}-warm.parquet"
    pd.read_parquet(source).head(200).to_parquet(warm)
    warm_options = {**options, "partition_rows": 50}
    embed(warm, f"{output}-warm", client=cluster.client, progress=False, overwrite=True, **warm_options)
    result = embed(source, output, client=cluster.client, progress=False, overwrite=True, **options)
    return vectors_of(output), result.manifest["seconds"]["processing"]


def korsts_spearman(path: Path, work: str, cluster, **options) -> float:
    pairs = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    scores = pairs["score"].astype(float)
    sides = []
    for column in ("sentence1", "sentence2"):
        source = f"{work}/korsts-{column}.parquet"
        pairs[[column]].rename(columns={column: "text"}).to_parquet(source)
        embed(source, f"{source}.emb", client=cluster.client, progress=False, overwrite=True, **options)
        sides.append(vectors_of(f"{source}.emb"))
    cosine = pd.Series((sides[0] * sides[1]).sum(axis=1))
    return 100 * cosine.corr(scores, method="spearman")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    parser.add_argument("--korsts", help="KorSTS TSV to measure the int8 quality cost on")
    parser.add_argument("--layouts", action="store_true", help="also compare 1 worker x all cores with 2 workers x 1 core")
    args = parser.parse_args()

    texts = read_reviews(args.data, ["text"])["text"].head(args.rows)
    work = tempfile.mkdtemp(prefix="kbatch-bench-")
    source = f"{work}/reviews.parquet"
    texts.to_frame().to_parquet(source)
    spec = resolve_model()
    n = len(texts)
    print(f"{n:,} NSMC reviews, {spec.name}, {os.cpu_count()} cores", flush=True)

    plain, plain_s = plain_encode(texts.tolist(), spec.path)
    rows = [("plain SentenceTransformer.encode(batch_size=32)", plain_s, 1.0)]

    start = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        embed(source, f"{work}/cold", progress=False, log=quiet)
    cold_s = time.perf_counter() - start
    cold = vectors_of(f"{work}/cold")
    rows.append(("kbatch embed, cold (cluster start + model load)", cold_s, float((cold * plain).sum(1).min())))

    with open_cluster(ClusterConfig(dashboard_address=":0"), log=open(os.devnull, "w")) as cluster:
        steady, steady_s = kbatch_steady(cluster, source, f"{work}/steady")
        rows.append(("kbatch embed, steady state", steady_s, float((steady * plain).sum(1).min())))
        int8_mean = None
        if is_transformer(spec.path):  # --quantize int8 exports a transformer; use-m3 is none
            int8, int8_s = kbatch_steady(cluster, source, f"{work}/int8", quantize="int8")
            rows.append(("kbatch embed --quantize int8, steady state", int8_s, float((int8 * plain).sum(1).min())))
            int8_mean = float((int8 * plain).sum(1).mean())
        if args.korsts and int8_mean is not None:
            exact_rho = korsts_spearman(Path(args.korsts), work, cluster)
            int8_rho = korsts_spearman(Path(args.korsts), work, cluster, quantize="int8")

    if args.layouts:
        for workers in (1, 2):
            config = ClusterConfig(n_workers=workers, dashboard_address=":0")
            with open_cluster(config, log=open(os.devnull, "w")) as cluster:
                vectors, seconds = kbatch_steady(cluster, source, f"{work}/layout{workers}", partition_rows=max(n // 8, 1))
                rows.append((f"kbatch steady, {workers} worker(s) x {config.torch_threads_per_worker(workers)} torch threads",
                             seconds, float((vectors * plain).sum(1).min())))

    plain_rate = n / plain_s
    print(f"{'way':58} {'seconds':>8} {'sent/s':>8} {'vs plain':>9} {'min cos':>8}")
    for name, seconds, cosine in rows:
        rate = n / seconds
        print(f"{name:58} {seconds:8.1f} {rate:8.1f} {rate / plain_rate:8.2f}x {cosine:8.4f}")
    if int8_mean is not None:
        print(f"int8 cosine to exact: min {rows[3][2]:.4f}, mean {int8_mean:.4f}")
    if args.korsts and int8_mean is not None:
        print(f"KorSTS Spearman x100 ({Path(args.korsts).name}): exact {exact_rho:.1f}, int8 {int8_rho:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
