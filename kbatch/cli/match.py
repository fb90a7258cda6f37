"""``kbatch match``: top-k products of one catalog for each row of another (or of itself)."""

from __future__ import annotations

import argparse

from kbatch.cli.common import add_command, add_prompt_option, add_run_options, add_trust_option, cluster_file
from kbatch.models.resolve import DEFAULT_MODEL

EXAMPLES = """\
examples:
  python -m kbatch match examples/offers.parquet examples/catalog.parquet --text-col title --id-col sku \\
      --top-k 5 --min-score 0.75 -o out/matches
      the 5 closest catalog products for every seller offer, scores of at least 0.75

  python -m kbatch match examples/catalog.parquet --text-col title --id-col sku --top-k 10 -o out/dupes
      near-duplicates within one catalog (a row never matches itself)

  python -m kbatch match out/offers-emb out/catalog-emb -o out/matches
      vectors already written by 'kbatch embed' are used as they are (same model needed)

  python -m kbatch match examples/offers.parquet examples/catalog.parquet --text-col title --id-col sku --spec-aware
      titles that differ in a spec (256GB/512GB, S24/S23, 블랙/화이트) lose score

Tables are embedded first into OUTPUT/_embeddings/ (resumable, reused on rerun). Each
left partition is scored against all right rows block by block, on GPU workers when
there are any: exact top-k, memory bounded by one block, never a left x right matrix.
Output: left_id, right_id, score (float32), rank (int16, 1 = best).
"""


def add_parser(commands) -> None:
    match = add_command(
        commands, "match", "top-k cosine matches between two catalogs, or near-duplicates in one",
        "Embed both sides (or reuse embed outputs) and write each left row's top-k right rows by cosine.",
        EXAMPLES,
    )
    match.add_argument("left", help="table (Parquet/CSV/TSV/JSONL) or a 'kbatch embed' output directory")
    match.add_argument("right", nargs="?", help="the catalog to match against (default: the left side itself)")
    match.add_argument("-o", "--output", default="out/matches", help="output directory (default: out/matches)")
    match.add_argument("--text-col", default="text", help="title column of both tables (default: text)")
    match.add_argument("--id-col", help="id column of both tables (default: row numbers)")
    match.add_argument("--top-k", type=int, default=10, help="matches per left row (default: 10)")
    match.add_argument("--min-score", type=float, help="drop matches scoring below this")
    match.add_argument("--spec-aware", action="store_true", help="penalize titles that disagree on a spec (capacity, model, color ...)")
    match.add_argument("--index", choices=["exact", "ann"], default="exact",
                       help="exact (default) or ann: a faiss HNSW index of the right side, for catalogs over ~1M rows")
    match.add_argument("--model", help=f"model for tables that still need embedding (default: {DEFAULT_MODEL})")
    add_trust_option(match)
    add_prompt_option(match, texts="the titles of both tables")
    add_prompt_option(match, "--right-prompt", "the right table's titles", "--prompt (e5-small: passage may suit a catalog)")
    match.add_argument("--cache", help="embedding cache directory: titles embedded before are not encoded again")
    match.add_argument("--previous", help="an earlier output of this match: against the same right side, unchanged left rows keep it")
    match.add_argument("--partition-rows", type=int, help="left rows per task (default: the embed partitions)")
    add_run_options(match)
    match.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.match import match

    result = match(
        args.left, args.right, args.output, top_k=args.top_k, min_score=args.min_score, spec_aware=args.spec_aware,
        index=args.index, model=args.model, prompt=args.prompt, right_prompt=args.right_prompt, cache=args.cache, previous=args.previous,
        text_col=args.text_col, id_col=args.id_col,
        partition_rows=args.partition_rows, trust_remote_code=args.trust_remote_code,
        overwrite=args.overwrite, cluster=cluster_file(args.cluster), report=args.report, progress=args.progress,
    )
    print(f"kbatch {result.summary()}")
    return 0
