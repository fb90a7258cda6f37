"""use-m3-ko against use-m3 on data neither was tuned on, and their CPU speed, in one run.

    python bench/use_m3_ko.py [--rows 2000] [--rounds 3]

Both through ``kbatch embed`` on a local cluster: KorSTS test Spearman (× 100, cosine),
the XNLI-ko test ranking check (for each premise, does its entailment hypothesis score
above its contradiction hypothesis; use-m3-ko never saw xnli.test), and sentences/s on
``--rows`` NSMC reviews once the workers hold the model (best of ``--rounds``, the two
models alternating so a busy machine slows both alike).
"""

from __future__ import annotations

import argparse
import csv
import tempfile

import numpy as np
import pandas as pd
from embed_vs_st import kbatch_steady, korsts_spearman, vectors_of
from shared_data import default_reviews, read_reviews, shared_data_dir

from kbatch.commands.embed import embed
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig

MODELS = ("use-m3", "use-m3-ko")


def xnli_ranking(work: str, cluster, model: str) -> float:
    """Share of premises whose entailment hypothesis is closer than their contradiction hypothesis (%)."""
    pairs = pd.read_csv(shared_data_dir() / "kornli" / "xnli.test.ko.tsv", sep="\t", quoting=csv.QUOTE_NONE,
                        keep_default_na=False, dtype=str)
    sides = {label: pairs[pairs["gold_label"] == label].drop_duplicates("sentence1").set_index("sentence1")["sentence2"]
             for label in ("entailment", "contradiction")}
    premises = sorted(set(sides["entailment"].index) & set(sides["contradiction"].index))
    texts = {"premise": premises, **{label: side[premises].tolist() for label, side in sides.items()}}
    vectors = {}
    for name, column in texts.items():
        source = f"{work}/xnli-{name}.parquet"
        pd.DataFrame({"text": column}).to_parquet(source)
        embed(source, f"{source}.emb", model=model, client=cluster.client, progress=False, overwrite=True)
        vectors[name] = vectors_of(f"{source}.emb")
    closer = (vectors["premise"] * vectors["entailment"]).sum(axis=1) > (vectors["premise"] * vectors["contradiction"]).sum(axis=1)
    return 100 * float(np.mean(closer))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="NSMC reviews for the speed measurement")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds per model, alternating")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kbatch-bench-") as work, open_cluster(ClusterConfig()) as cluster:
        source = f"{work}/reviews.parquet"
        read_reviews(args.data, ["text"]).head(args.rows).to_parquet(source)
        rates: dict[str, list[float]] = {model: [] for model in MODELS}
        for _ in range(args.rounds):
            for model in MODELS:
                _, seconds = kbatch_steady(cluster, source, f"{work}/{model}", model=model)
                rates[model].append(args.rows / seconds)
        quality = {model: (korsts_spearman(shared_data_dir() / "korsts" / "sts-test.tsv", work, cluster, model=model),
                           xnli_ranking(work, cluster, model)) for model in MODELS}
    print(f"{'model':12} {'KorSTS test':>12} {'XNLI-ko test ranking':>21} {'sent/s (best of ' + str(args.rounds) + ')':>20}")
    for model in MODELS:
        spearman, ranking = quality[model]
        print(f"{model:12} {spearman:12.2f} {ranking:20.2f}% {max(rates[model]):20.0f}")
    ratio = max(rates["use-m3-ko"]) / max(rates["use-m3"])
    print(f"use-m3-ko / use-m3 throughput: {ratio:.2f} (rounds: "
          + ", ".join(f"{model} {' '.join(f'{r:.0f}' for r in rates[model])}" for model in MODELS) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
