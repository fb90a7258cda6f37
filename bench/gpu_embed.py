"""kbatch embed on GPU workers against plain SentenceTransformer.encode on the same GPU.

    python bench/gpu_embed.py --data reviews_100k.parquet --model MODEL_DIR [--rows 100000]

Run by bench/gpu_check.sh on a GPU machine. Plain encode runs in this process (fp32 with
batch 32, the common call, then fp16 with batch 256); kbatch starts a local cluster (CPU
workers tokenize, one dask-cuda worker per GPU encodes, fp16 by default) and embeds the
reviews twice: the first run counts end to end (cluster start and model load included),
the second is the steady state (the workers hold the model), and a third is the steady state
with partitions of 10,000 rows. Prints sentences/s, the ratio to plain fp32 batch 32, the
minimum cosine of each to the plain fp32 vectors, and the GPU's mean utilisation during each
(``nvidia-smi`` sampled every 200 ms).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import load_sentence_transformer, resolve_model
from kbatch.stages.normalize import NormalizeText
from kbatch.vectors.columns import vector_matrix


class Utilisation:
    """The GPU's mean utilisation (percent) while the block ran, from ``nvidia-smi`` every 200 ms."""

    def __enter__(self) -> Utilisation:
        self.sampler = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                         "-lms", "200"], stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the sampling now (once; the block's end then changes nothing)."""
        if hasattr(self, "mean"):
            return
        self.sampler.terminate()
        samples = [float(line) for line in self.sampler.communicate()[0].split() if line.isdigit()]
        self.mean = sum(samples) / max(len(samples), 1)


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


def vectors_of(output: str) -> np.ndarray:
    return vector_matrix(pq.read_table(output, columns=["embedding"]).column("embedding").combine_chunks())[0]


def kbatch_runs(source: str, work: str, model_path: str, precision: str) -> list[tuple[str, float, np.ndarray, float]]:
    """(name, seconds, vectors, GPU utilisation) of a first run on a fresh cluster (end to end),
    a second (steady state) and a third with 10,000-row partitions (steady state)."""
    with open(os.devnull, "w") as quiet, Utilisation() as first_busy, ExitStack() as stack:
        start = time.perf_counter()
        cluster = stack.enter_context(open_cluster(ClusterConfig(dashboard_address=":0"), log=sys.stderr))
        options = {"model": model_path, "precision": precision, "client": cluster.client, "progress": False, "log": quiet}
        embed(source, f"{work}/first", **options)
        end_to_end = time.perf_counter() - start
        first_busy.stop()
        runs = [("kbatch embed, end to end", end_to_end, vectors_of(f"{work}/first"), first_busy.mean)]
        for name, rows in (("steady state", None), ("steady, 10,000-row parts", 10_000)):
            with Utilisation() as busy:
                result = embed(source, f"{work}/{rows}", partition_rows=rows, **options)
            print(f"{name}: workers {result.manifest['workers']}, stage seconds {result.manifest['stage_seconds']}",
                  file=sys.stderr)
            runs.append((f"kbatch embed, {name}", result.manifest["seconds"]["processing"], vectors_of(f"{work}/{rows}"),
                         busy.mean))
    return runs


def in_process(texts: list[str], model_path: str, precision: str, device: str) -> np.ndarray:
    """kbatch's own stages (normalize, subword, encode) in this process, without a cluster."""
    from kbatch.models.encoders import EncoderSettings
    from kbatch.models.resolve import resolve_model as resolve
    from kbatch.stages.embed import Embed
    from kbatch.stages.encode import Encode
    from kbatch.stages.subword import SubwordTokenize

    spec = resolve(model_path)
    stage = Embed(SubwordTokenize.for_model(spec), Encode(EncoderSettings(spec.path, precision=precision, device=device)))
    frame = pd.DataFrame({"id": np.arange(len(texts)), "text": texts})
    for step in stage.expand():
        frame = step(frame)
    return vector_matrix(pa.array(frame["embedding"]))[0]


def worst_rows(texts: list[str], exact: np.ndarray, half: np.ndarray, ours: np.ndarray, model_path: str) -> None:
    """Where kbatch's vectors are furthest from plain fp32: the rows, plain fp16 on them, and
    kbatch's stages in this process on all rows (fp16) and on the worst row alone (fp16, fp32)."""
    cosine = np.sum(ours * exact, axis=1)
    worst = np.argsort(cosine)[:3]
    print(f"rows under 0.999: {int((cosine < 0.999).sum())}")
    normalized = NormalizeText().process(pd.DataFrame({"text": [texts[i] for i in worst]}))["text"].tolist()
    for i, text in zip(worst, normalized, strict=True):
        changed = f" (normalized: {text!r})" if text != texts[i] else ""
        print(f"  row {i}: kbatch {cosine[i]:.5f}, plain fp16 {float(half[i] @ exact[i]):.5f}, {texts[i]!r}{changed}")
    everything = in_process(texts, model_path, "fp16", "cuda")
    print(f"  in process, fp16: min cosine on all rows {float(np.min(np.sum(everything * exact, axis=1))):.5f}")
    for precision in ("fp16", "fp32"):
        alone = in_process([texts[worst[0]]], model_path, precision, "cuda")[0]
        print(f"  in process, {precision}: worst row alone {float(alone @ exact[worst[0]]):.5f}")


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
        with Utilisation() as exact_busy:
            exact, exact_seconds = plain(texts, args.model, half=False, batch_size=32)
        with Utilisation() as half_busy:
            half, half_seconds = plain(texts, args.model, half=True, batch_size=256)
        rows = [("plain encode fp32, batch 32", exact_seconds, exact, exact_busy.mean),
                ("plain encode fp16, batch 256", half_seconds, half, half_busy.mean),
                *kbatch_runs(source, work, args.model, args.precision)]
    n = len(texts)
    base = n / exact_seconds
    print(f"\n{n:,} NSMC reviews, {args.model}")
    print(f"{'':34} {'sentences/s':>12} {'vs plain fp32/32':>17} {'min cosine':>11} {'GPU util':>9}")
    for name, seconds, vectors, busy in rows:
        cosine = float(np.min(np.sum(vectors * exact, axis=1)))
        print(f"{name:34} {n / seconds:12,.0f} {n / seconds / base:16.1f}x {cosine:11.5f} {busy:8.0f}%")
    worst_rows(texts, exact, half, rows[-1][2], args.model)
    print("bar: kbatch steady state >= 10x plain fp32/32 and >= 25,000 sentences/s, cosine >= 0.999")
    return 0


if __name__ == "__main__":
    sys.exit(main())
