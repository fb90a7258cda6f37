"""kbatch embed on GPU workers against plain SentenceTransformer.encode on the same GPU.

    python bench/gpu_embed.py --data reviews_100k.parquet --model MODEL_DIR [--rows 100000]

Run by bench/gpu_check.sh on a GPU machine. Plain encode runs in this process (fp32 with
batch 32, the common call, then fp16 with batch 256); kbatch starts a local cluster (CPU
workers tokenize, one dask-cuda worker per GPU encodes, fp16 by default) and embeds the
reviews twice: the first run counts end to end (cluster start and model load included),
the second is the steady state (the workers hold the model). Prints sentences/s, the ratio
to plain fp32 batch 32, and the minimum cosine of each to the plain fp32 vectors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import load_sentence_transformer, resolve_model
from kbatch.vectors.columns import vector_matrix


def plain(texts: list[str], model_path: str, half: bool, batch_size: int) -> tuple[np.ndarray, float]:
    import torch

    model = load_sentence_transformer(model_path, "cuda")
    model = model.half() if half else model.float()
    model.encode(texts[:2048], batch_size=batch_size)
    torch.cuda.synchronize()
    start = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del model
    torch.cuda.empty_cache()
    return vectors.astype(np.float32), seconds


def kbatch_runs(source: str, work: str, model_path: str, precision: str) -> tuple[np.ndarray, float, float]:
    """Vectors, end-to-end seconds of a first run on a fresh cluster, steady seconds of a second."""
    start = time.perf_counter()
    with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=sys.stderr) as cluster:
        options = {"model": model_path, "precision": precision, "client": cluster.client, "progress": False, "log": quiet}
        embed(source, f"{work}/first", **options)
        end_to_end = time.perf_counter() - start
        second = embed(source, f"{work}/second", **options)
    table = pq.read_table(f"{work}/second", columns=["embedding"])
    return vector_matrix(table.column("embedding").combine_chunks())[0], end_to_end, second.manifest["seconds"]["processing"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="NSMC reviews Parquet")
    parser.add_argument("--model", required=True, help="model directory or name (use-m3 is built on the machine)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--precision", default="auto", help="kbatch's --precision (default: auto = fp16 on GPU)")
    args = parser.parse_args()
    args.model = resolve_model(args.model).path
    reviews = pd.read_parquet(args.data, columns=["text"]).head(args.rows)
    reviews = reviews[reviews.text.str.strip().str.len() > 0].reset_index(drop=True)
    texts = reviews.text.tolist()
    with tempfile.TemporaryDirectory() as work:
        source = f"{work}/reviews.parquet"
        reviews.to_parquet(source, row_group_size=10_000)
        exact, exact_seconds = plain(texts, args.model, half=False, batch_size=32)
        half, half_seconds = plain(texts, args.model, half=True, batch_size=256)
        ours, end_to_end, steady = kbatch_runs(source, work, args.model, args.precision)
    n = len(texts)
    base = n / exact_seconds
    rows = [("plain encode fp32, batch 32", exact_seconds, exact), ("plain encode fp16, batch 256", half_seconds, half),
            ("kbatch embed, end to end", end_to_end, ours), ("kbatch embed, steady state", steady, ours)]
    print(f"\n{n:,} NSMC reviews, {args.model}")
    print(f"{'':32} {'sentences/s':>12} {'vs plain fp32/32':>17} {'min cosine':>11}")
    for name, seconds, vectors in rows:
        cosine = float(np.min(np.sum(vectors * exact, axis=1)))
        print(f"{name:32} {n / seconds:12,.0f} {n / seconds / base:16.1f}x {cosine:11.5f}")
    print("bar: kbatch steady state >= 10x plain fp32/32 and >= 25,000 sentences/s, cosine >= 0.999")
    return 0


if __name__ == "__main__":
    sys.exit(main())
