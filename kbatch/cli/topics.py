"""``kbatch topics``: options, examples, and the call into :func:`kbatch.topics.topics`."""

from __future__ import annotations

import argparse
from pathlib import Path

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER
from kbatch.cli.common import add_command, add_run_options, cluster_file
from kbatch.topics.pipeline import METHODS

EXAMPLES = """\
examples:
  python -m kbatch topics examples/reviews.parquet --n-topics auto -o out/topics --plot out/topics.html
      topics of 2,000 reviews; the count chosen by silhouette; a page of sizes, words and a map

  python -m kbatch topics corpus.parquet --n-topics 30 --label-col category
      30 topics, scored against the gold 'category' column (NMI, ARI)

  python -m kbatch topics corpus.parquet --embeddings out/corpus-embeddings --method minibatch
      vectors from an earlier 'kbatch embed'; k-means updated by every partition in turn

  python -m kbatch topics corpus.parquet --method ctm --n-topics 20
      a contextualized topic model (CombinedTM: bag of morphemes + sentence vectors)

Steps: embed (OUTPUT/_embeddings, resumable) and morphemes (OUTPUT/_tokens, nouns by
default) -> fit on --fit-sample documents (kmeans, hdbscan; minibatch then streams all)
-> every document assigned on the workers -> c-TF-IDF of morphemes per topic, counted per
partition and summed in a tree -> NPMI coherence and topic diversity of the top words.
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
    parser.add_argument("source", nargs="+", help="Parquet/CSV/TSV/JSONL file(s), a directory, or a quoted glob")
    parser.add_argument("-o", "--output", help="output directory (default: out/<input name>-topics)")
    parser.add_argument("--text-col", default="text", help="column of the documents (default: text)")
    parser.add_argument("--id-col", help="column copied to 'id' (default: the row number across the input)")
    parser.add_argument("--n-topics", default="auto", help="a number, or auto (default): k by silhouette; hdbscan finds its own")
    parser.add_argument("--method", default="kmeans", choices=METHODS, help="(default: kmeans)")
    parser.add_argument("--fit-sample", type=int, default=20_000, help="documents the model is fitted on (default: 20,000)")
    parser.add_argument("--reduce-dims", type=int, help="PCA to this many dimensions before clustering (default: none; hdbscan 10)")
    parser.add_argument("--min-cluster-size", type=int, help="hdbscan: smallest topic (default: sample/200, at least 10)")
    parser.add_argument("--top-words", type=int, default=10, help="keywords per topic (default: 10)")
    parser.add_argument("--keyword-diversity", type=float, default=0.0, help="0 (default) to 1: re-rank topic words by MMR")
    parser.add_argument("--embeddings", help="reuse vectors: a 'kbatch embed' output, or Parquet with id and embedding")
    parser.add_argument("--model", help="model for embedding (default: the packaged one, or that of --embeddings)")
    parser.add_argument("--analyzer", default=DEFAULT_ANALYZER, choices=list(ANALYZERS), help=f"(default: {DEFAULT_ANALYZER})")
    parser.add_argument("--pos", default="nouns", help="morphemes that describe topics: nouns (default), content, or tags")
    parser.add_argument("--stopwords", help="builtin (default), none, or a file of words")
    parser.add_argument("--label-col", help="gold labels: print NMI and ARI of the topics against them")
    parser.add_argument("--plot", help="write sizes, top words and a 2-D map of documents to FILE.html or FILE.png")
    parser.add_argument("--seed", type=int, default=0, help="random seed of sampling and fitting (default: 0)")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.topics import topics

    source = args.source if len(args.source) > 1 else args.source[0]
    output = args.output or f"out/{Path(args.source[0].rstrip('/')).stem.replace('*', 'all')}-topics"
    result = topics(
        source, output, n_topics=args.n_topics, method=args.method, fit_sample=args.fit_sample, reduce_dims=args.reduce_dims,
        min_cluster_size=args.min_cluster_size, top_words=args.top_words, keyword_diversity=args.keyword_diversity,
        embeddings=args.embeddings, model=args.model, analyzer=args.analyzer, pos=args.pos, stopwords=args.stopwords,
        label_col=args.label_col, plot=args.plot, seed=args.seed, text_col=args.text_col, id_col=args.id_col,
        overwrite=args.overwrite, cluster=cluster_file(args.cluster), report=args.report, progress=args.progress,
    )
    print(f"kbatch {result.summary()}")
    return 0
