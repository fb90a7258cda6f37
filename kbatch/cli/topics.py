"""``kbatch topics``: options, examples, and the call into :func:`kbatch.topics.topics`."""

from __future__ import annotations

import argparse

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER
from kbatch.cli.common import add_command, add_input_options, add_run_options, add_vectors_options, run_and_summarize
from kbatch.commands.topics import METHODS, OUTLIERS
from kbatch.topicmodel.clustering import OUTLIER_PERCENTILE

EXAMPLES = """\
examples:
  python -m kbatch topics examples/reviews.parquet --n-topics auto -o out/topics --plot out/topics.html
      topics of 2,000 reviews, as many as HDBSCAN finds; a page of sizes, words and a map

  python -m kbatch topics corpus.parquet --n-topics 30 --label-col category
      30 topics, scored against the gold 'category' column (NMI, ARI)

  python -m kbatch topics corpus.parquet --embeddings out/corpus-embeddings --method minibatch --n-topics 50
      vectors from an earlier 'kbatch embed'; k-means updated by every partition in turn

  python -m kbatch topics corpus.parquet --method ctm --n-topics 20
      a contextualized topic model (CombinedTM: bag of morphemes + sentence vectors)

Steps: embed (OUTPUT/_embeddings, resumable) and morphemes (OUTPUT/_tokens, nouns by
default) -> fit on --fit-sample documents (hdbscan, kmeans; minibatch then streams all)
-> every document assigned on the workers (hdbscan: an outlier as close to a topic as
its members are joins it, unless --outliers keep) -> c-TF-IDF of morphemes per topic,
counted per partition and summed in a tree -> NPMI coherence and topic diversity of the
top words.
Outputs: OUTPUT/doc_topics/ (id, topic int32 with -1 = outlier, score float32),
OUTPUT/topics.parquet (topic, size, keywords, keyword_scores, representative_ids),
OUTPUT/_kbatch.json (how the count was chosen, quality, timings).
"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "topics", "BERTopic-style topics of a corpus, with Korean morphemes, at cluster scale",
        "Cluster document embeddings into topics, describe each with its morphemes, and score the topics.",
        EXAMPLES,
    )
    add_input_options(parser, "topics", "column of the documents", "as embed and tokenize choose")
    parser.add_argument("--n-topics", default="auto",
                        help="auto (default: hdbscan's own count, k-means' best silhouette) or a number N: exactly N topics "
                             "(hdbscan merges down to N, or k-means makes N when HDBSCAN finds fewer)")
    parser.add_argument("--method", default="hdbscan", choices=METHODS, help="(default: hdbscan)")
    parser.add_argument("--fit-sample", type=int, default=20_000, help="documents the model is fitted on (default: 20,000)")
    parser.add_argument("--reduce-dims", type=int, help="PCA to this many dimensions before clustering (default: none; hdbscan 10)")
    parser.add_argument("--min-cluster-size", type=int, help="hdbscan: smallest topic (default: sample/1000, at least 10)")
    parser.add_argument("--outliers", default="nearest", choices=OUTLIERS,
                        help="hdbscan: nearest (default) = a document HDBSCAN leaves out joins its nearest topic when it is as "
                             f"close to it as {100 - OUTLIER_PERCENTILE:g}%% of HDBSCAN's own members are to theirs; "
                             "keep = it stays an outlier (topic -1)")
    parser.add_argument("--top-words", type=int, default=10, help="keywords per topic (default: 10)")
    parser.add_argument("--keyword-diversity", type=float, default=0.0, help="0 (default) to 1: re-rank topic words by MMR")
    add_vectors_options(parser)
    parser.add_argument("--analyzer", default=DEFAULT_ANALYZER, choices=list(ANALYZERS), help=f"(default: {DEFAULT_ANALYZER})")
    parser.add_argument("--pos", default="nouns", help="morphemes that describe topics: nouns (default), content, or tags")
    parser.add_argument("--stopwords", help="builtin (default), none, or a file of words")
    parser.add_argument("--label-col", help="gold labels: print NMI and ARI of the topics against them")
    parser.add_argument("--plot", help="write sizes, top words and a 2-D map of documents to FILE.html or FILE.png")
    parser.add_argument("--seed", type=int, default=0, help="random seed of sampling and fitting (default: 0)")
    parser.add_argument("--previous", help="an earlier topics output of this corpus: its topics keep their ids here")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.topics import topics

    names = ("n_topics", "method", "fit_sample", "reduce_dims", "min_cluster_size", "outliers", "top_words", "keyword_diversity",
             "embeddings", "model", "trust_remote_code", "prompt", "analyzer", "pos", "stopwords", "label_col", "plot", "seed", "previous")
    return run_and_summarize(topics, args, "topics", **{name: getattr(args, name) for name in names})
