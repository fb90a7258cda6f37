"""``kbatch dedup``: options, examples, and the call into :func:`kbatch.commands.dedup.dedup`."""

from __future__ import annotations

import argparse

from kbatch.cli.common import add_command, add_input_options, add_run_options, add_vectors_options, run_and_summarize
from kbatch.commands.dedup import KEEP_MEANING

EXAMPLES = """\
examples:
  python -m kbatch dedup examples/reviews.parquet --id-col review_id --threshold 0.95 -o out/reviews-dedup
      exact copies and near-duplicates (cosine >= 0.95) of 2,000 reviews; open out/reviews-dedup/thresholds.html

  python -m kbatch dedup examples/reviews.parquet --id-col review_id --exact-only -o out/reviews-dedup-exact
      only rows whose normalized text is identical (no model, no vectors)

  python -m kbatch dedup corpus.parquet --embeddings out/corpus-embeddings --keep longest --write-rows
      vectors from an earlier 'kbatch embed'; each group keeps its longest text; kept/ holds the rows themselves

  python -m kbatch dedup night-2.parquet --previous out/night-1-dedup -o out/night-2-dedup
      tonight's rows checked against every row kept on earlier nights, which stay kept

Steps: exact pass (hash of the normalized text of every row, on the workers) -> embed
(OUTPUT/_embeddings, resumable) -> k-means on a sample (--clusters, default about sqrt(rows))
-> every vector to its --assignments nearest centroids -> pairs compared within each
cluster, tile by tile -> groups of rows joined by cosine >= --threshold -> one row kept per
group (--keep).
Outputs: OUTPUT/kept/ (id, or the input rows with --write-rows), OUTPUT/groups.parquet
(group_id, id, representative_id, cosine to the representative), OUTPUT/thresholds.html
(the duplicate share at thresholds near yours, to choose one), OUTPUT/_kbatch.json.
"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "dedup", "remove exact and near-duplicate texts (SemDeDup on the cluster)",
        "Find rows whose normalized text is identical, and rows whose embeddings are nearly so, and keep one of each group.",
        EXAMPLES,
    )
    add_input_options(parser, "dedup", "column of the texts", "as embed chooses")
    parser.add_argument("--threshold", type=float, default=0.95,
                        help="cosine at or above which two rows are duplicates, in (0, 1] (default: 0.95)")
    parser.add_argument("--exact-only", action="store_true", help="only identical normalized texts: no model, no vectors")
    parser.add_argument("--clusters", type=int, help="k-means clusters rows are compared within (default: about sqrt(rows))")
    parser.add_argument("--assignments", type=int, default=2,
                        help="nearest clusters each row joins, so pairs near a border are still compared (default: 2)")
    parser.add_argument("--keep", default="centroid", choices=list(KEEP_MEANING),
                        help="which row a group keeps: " + "; ".join(f"{k} = {v}" for k, v in KEEP_MEANING.items())
                             + " (default: centroid)")
    parser.add_argument("--write-rows", action="store_true", help="kept/ holds the kept rows with their columns, not only ids")
    add_vectors_options(parser)
    parser.add_argument("--previous", help="last night's dedup output: rows kept on earlier nights stay kept, and tonight's "
                                           "copies of them are dropped")
    parser.add_argument("--seed", type=int, default=0, help="random seed of sampling and k-means (default: 0)")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.dedup import dedup

    names = ("threshold", "exact_only", "clusters", "assignments", "keep", "write_rows", "embeddings", "model", "trust_remote_code",
             "prompt", "previous", "seed")
    return run_and_summarize(dedup, args, "dedup", **{name: getattr(args, name) for name in names})
