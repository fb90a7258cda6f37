"""Multilingual knowledge distillation from use-m3: does a transformer student gain anything?

    python bench/distill.py [--sentences 6000] [--epochs 1]

The seed's recipe (Reimers & Gurevych 2020): a student SBERT (all-MiniLM-L6-v2 plus a
dense layer to the teacher's 512 dimensions) learns, with MSE, to reproduce the teacher's
vectors of Korean sentences (KorSTS train sentences and NSMC reviews, not KorSTS test).
Prints KorSTS test Spearman and kbatch embed throughput of the teacher, the student and
the student's base, measured the same way in one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import pandas as pd
from embed_vs_st import kbatch_steady
from shared_data import default_reviews, read_reviews, shared_data_dir

from kbatch.commands.sts import evaluate
from kbatch.engine.cluster import open_cluster
from kbatch.engine.config import ClusterConfig
from kbatch.io.pairs import read_pairs
from kbatch.models.resolve import resolve_model


def train_student(sentences: list[str], teacher, base_path: str, output: str, epochs: float) -> float:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.modules import Dense

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        student = SentenceTransformer(base_path, device="cpu")
    width = teacher.get_embedding_dimension()
    modules = [m for m in student if type(m).__name__ != "Normalize"]
    student = SentenceTransformer(modules=[*modules, Dense(student.get_embedding_dimension(), width)], device="cpu")
    student.max_seq_length = 128  # the Korean sentences here are shorter; halves the training time on CPU
    targets = teacher.encode(sentences, batch_size=256, normalize_embeddings=True)
    data = Dataset.from_dict({"sentence": sentences, "label": list(targets)})
    arguments = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="kbatch-distill-"), num_train_epochs=epochs, per_device_train_batch_size=64,
        learning_rate=1e-4, warmup_steps=0.1, report_to="none", logging_strategy="no", save_strategy="no", seed=0,
    )
    start = time.perf_counter()
    SentenceTransformerTrainer(model=student, args=arguments, train_dataset=data, loss=losses.MSELoss(student)).train()
    seconds = time.perf_counter() - start
    student.save(output)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=6000, help="Korean sentences to distil on")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--speed-rows", type=int, default=5000, help="reviews embedded for the throughput column")
    parser.add_argument("--data", default=default_reviews(), help="NSMC reviews Parquet (column 'text')")
    args = parser.parse_args()

    from kbatch.models.resolve import load_sentence_transformer

    train = read_pairs(shared_data_dir() / "korsts" / "sts-train.tsv", "sts").frame
    reviews = read_reviews(args.data, ["text"])["text"].dropna()
    reviews = reviews[reviews.str.strip() != ""]
    sentences = pd.unique(pd.concat([train.sentence1, train.sentence2, reviews.iloc[args.speed_rows:]]))[: args.sentences]
    work = tempfile.mkdtemp(prefix="kbatch-bench-")
    teacher, base = resolve_model("use-m3"), resolve_model("all-MiniLM-L6-v2")
    student = f"{work}/student"
    seconds = train_student(list(sentences), load_sentence_transformer(teacher.path, "cpu"), base.path, student, args.epochs)
    print(f"student: {base.name} + Dense(384→512), MSE to use-m3 on {len(sentences):,} Korean sentences, "
          f"{args.epochs:g} epoch(s): {seconds:.0f} s on {os.cpu_count()} CPU cores", flush=True)

    source = f"{work}/reviews.parquet"
    reviews.head(args.speed_rows).to_frame().to_parquet(source)
    test = shared_data_dir() / "korsts" / "sts-test.tsv"
    print(f"{'model':40} {'KorSTS test':>12} {'sent/s (kbatch embed)':>22}")
    with open_cluster(ClusterConfig(dashboard_address=":0"), log=open(os.devnull, "w")) as cluster:
        for name, path in (("use-m3 (teacher)", teacher.path), ("distilled student", student), (f"{base.name} (base)", base.path)):
            spearman = evaluate(test, model=path, client=cluster.client, progress=False)["spearman"]
            _, embed_s = kbatch_steady(cluster, source, f"{work}/{len(name)}", model=path)
            print(f"{name:40} {spearman:12.2f} {args.speed_rows / embed_s:22.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
