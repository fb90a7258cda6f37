"""Every offline model kbatch knows, on the same Korean data in one run.

    python bench/models.py [--models use-m3,use-m3-ko,e5-small,all-MiniLM-L6-v2] [--rows 5000]

For each model, through kbatch's own commands on one local cluster (started once, each
model loaded on the workers before anything is timed):

- KorSTS test: Spearman × 100 of cosine against the gold scores (``kbatch evaluate``);
- XNLI-ko ranking: on the human-translated XNLI test (5,010 pairs, never trained on), the
  share of premises whose entailed hypothesis scores above their contradicting one
  (``kbatch sts`` on both pairs);
- paraphrase recall: seller offers of the synthetic catalog (bench/catalog.py) matched to
  their products, recall@1 and @5 (``kbatch match``);
- sentences/s of ``kbatch embed`` on ``--rows`` NSMC reviews on this CPU, and the ratio to
  use-m3 (the best of ``--rounds`` runs, the models alternating within each round).

Each model uses its own default prompt (e5-small: ``query: ``, for both sides of every task).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from catalog import make_catalog
from shared_data import default_reviews, read_reviews, shared_data_dir

from kbatch.commands.embed import embed
from kbatch.commands.match import match
from kbatch.commands.sts import evaluate, sts
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig

MODELS = ("use-m3", "use-m3-ko", "e5-small", "all-MiniLM-L6-v2")
BASELINE = "use-m3"


def xnli_triples(path: Path) -> pd.DataFrame:
    """Premises of an XNLI file with one entailed and one contradicting hypothesis each, as
    two pair rows per premise (``kind`` entailment / contradiction)."""
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    kinds = frame[frame.gold_label.isin(["entailment", "contradiction"])].drop_duplicates(["sentence1", "gold_label"])
    both = kinds.groupby("sentence1").gold_label.transform("nunique") == 2
    pairs = kinds[both].rename(columns={"gold_label": "kind"})[["sentence1", "sentence2", "kind"]]
    return pairs.sort_values(["sentence1", "kind"], ignore_index=True).assign(id=lambda f: range(len(f)))


def ranking_accuracy(model: str, pairs_file: Path, work: Path, options: dict) -> float:
    """Share of premises whose entailed hypothesis is closer than the contradicting one."""
    result = sts(pairs_file, work / "xnli", model=model, id_col="id", **options)
    scored = pd.read_parquet(result.output).merge(pd.read_parquet(pairs_file)[["id", "sentence1", "kind"]], on="id")
    table = scored.pivot(index="sentence1", columns="kind", values="score")
    return float((table.entailment > table.contradiction).mean())


def paraphrase_recall(model: str, work: Path, products: int, options: dict) -> tuple[float, float]:
    """Recall@1 and @5 of offers matched to their catalog products."""
    catalog, offers = make_catalog(products, seed=0)
    catalog.rename(columns={"product_id": "id"}).to_parquet(work / "catalog.parquet")
    offers.rename(columns={"offer_id": "id"}).drop(columns="product_id").to_parquet(work / "offers.parquet")
    result = match(work / "offers.parquet", work / "catalog.parquet", work / "matches", model=model, text_col="title", id_col="id",
                   top_k=5, **options)
    found = pd.read_parquet(result.output).merge(offers.rename(columns={"offer_id": "left_id"}), on="left_id")
    hits = found[found.right_id == found.product_id]
    return tuple(float(hits[hits["rank"] <= k].left_id.nunique() / len(offers)) for k in (1, 5))


def throughput(models: list[str], reviews: Path, work: Path, rounds: int, options: dict) -> dict[str, float]:
    """Sentences/s of ``kbatch embed`` per model, best of ``rounds``, the models alternating
    within each round so a busy machine slows them alike."""
    best = dict.fromkeys(models, 0.0)
    for round_ in range(rounds):
        for model in models:
            start = time.perf_counter()
            result = embed(reviews, work / model.replace("/", "_") / f"emb-{round_}", model=model, id_col="review_id", **options)
            best[model] = max(best[model], result.manifest["rows_done"] / (time.perf_counter() - start))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names or directories (default: %(default)s)")
    parser.add_argument("--rows", type=int, default=5000, help="NSMC reviews for the throughput part (default: 5,000)")
    parser.add_argument("--products", type=int, default=500, help="synthetic catalog products (default: 500)")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs per model; the best is kept (default: 2)")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet")
    args = parser.parse_args()

    models = args.models.split(",")
    korsts, xnli = shared_data_dir() / "korsts" / "sts-test.tsv", shared_data_dir() / "kornli" / "xnli.test.ko.tsv"
    for needed in (korsts, xnli):
        if not needed.is_file():
            sys.exit(f"bench: no {needed}; set KBATCH_SHARED_DATA to the shared data folder")
    work = Path(tempfile.mkdtemp(prefix="kbatch-bench-models-"))
    reviews = work / "reviews.parquet"
    read_reviews(args.data, ["review_id", "text"]).head(args.rows).to_parquet(reviews, index=False)
    pairs = xnli_triples(xnli)
    pairs.to_parquet(work / "xnli.parquet", index=False)
    print(f"KorSTS test 1,379 pairs; XNLI-ko test {len(pairs) // 2:,} premises; catalog {args.products:,} products; "
          f"{args.rows:,} NSMC reviews; {os.cpu_count()} cores", flush=True)

    rows = []
    with open(os.devnull, "w") as quiet, open_cluster(ClusterConfig(dashboard_address=":0"), log=quiet) as cluster:
        options = {"client": cluster.client, "progress": False, "log": quiet, "overwrite": True}
        for model in models:
            folder = work / model.replace("/", "_")
            embed(reviews, folder / "warm", model=model, id_col="review_id", partition_rows=args.rows // 4 or 1, **options)
            spearman = evaluate(korsts, model=model, **options)["spearman"]
            ranking = ranking_accuracy(model, work / "xnli.parquet", folder, options)
            at1, at5 = paraphrase_recall(model, folder, args.products, options)
            rows.append((model, spearman, ranking, at1, at5))
            print(f"  {model}: done", flush=True)
        speeds = throughput(models, reviews, work, args.rounds, options)

    base = speeds.get(BASELINE)
    print(f"\n{'model':22} {'KorSTS':>7} {'XNLI rank':>9} {'recall@1':>8} {'recall@5':>8} {'sent/s':>8} {'vs use-m3':>9}")
    for model, spearman, ranking, at1, at5 in rows:
        speed = speeds[model]
        ratio = f"{speed / base:.2f}x" if base else "-"
        print(f"{model:22} {spearman:7.2f} {ranking:9.3f} {at1:8.3f} {at5:8.3f} {speed:8.0f} {ratio:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
