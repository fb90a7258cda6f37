"""``kbatch sts`` and ``kbatch evaluate``: cosine scores of sentence pairs, and their agreement with gold."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kbatch.cli.common import (
    add_command,
    add_debug_option,
    add_input_options,
    add_prompt_option,
    add_run_options,
    add_trust_option,
    cluster_file,
    run_and_summarize,
)
from kbatch.models.resolve import DEFAULT_MODEL

STS_EXAMPLES = """\
examples:
  python -m kbatch sts examples/korsts/sts-dev.tsv --gold score -o out/sts
      cosine of sentence1/sentence2 for every KorSTS pair, plus Pearson and Spearman
      against the 0-5 gold scores (x100, printed and stored in out/sts/_kbatch.json)

  python -m kbatch sts pairs.parquet --col1 query --col2 title --id-col pair_id -o out/sts
      any two text columns; no gold column, just scores

TSV files are read with quoting off (csv.QUOTE_NONE), as KorSTS needs: quote marks
inside sentences stay text. Output: id, score (float32; null when a sentence is empty)
and the gold column as float when given (named gold_score if it is called 'score').
"""

EVALUATE_EXAMPLES = """\
examples:
  python -m kbatch evaluate --sts examples/korsts/sts-dev.tsv
  python -m kbatch evaluate --sts ../shared/data/korsts/sts-test.tsv --model models/minilm-korsts --json

The numbers are those sentence-transformers' EmbeddingSimilarityEvaluator reports
(cosine; Pearson and Spearman), times 100, as KorSTS and KLUE-STS papers print them.
"""


def add_parser(commands) -> None:
    sts = add_command(
        commands, "sts", "score sentence pairs by cosine similarity",
        "Embed both sentences of every pair and write their cosine similarity; with --gold, report Pearson/Spearman.",
        STS_EXAMPLES,
    )
    add_input_options(sts, "sts", None)
    _add_pair_options(sts, gold_default=None)
    sts.add_argument("--quantize", choices=["int8"], help="int8 ONNX encoder on CPU: faster, cosine ~0.98 to exact")
    sts.add_argument("--token-budget", type=int, help="tokens per forward pass (default: measured per device)")
    add_run_options(sts)
    sts.set_defaults(run=run_sts)

    evaluate = add_command(
        commands, "evaluate", "STS evaluation of a model (KorSTS, KLUE-STS style)",
        "Pearson and Spearman x100 between a model's cosine scores and gold similarity scores.",
        EVALUATE_EXAMPLES,
    )
    evaluate.add_argument("--sts", required=True, metavar="FILE", help="pairs with gold scores (TSV/CSV/JSONL/Parquet)")
    _add_pair_options(evaluate, gold_default="score")
    evaluate.add_argument("--cluster", help="cluster file (default: ./cluster.yaml if present, else a local cluster)")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_debug_option(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def _add_pair_options(parser: argparse.ArgumentParser, gold_default: str | None) -> None:
    parser.add_argument("--col1", default="sentence1", help="first sentence column (default: sentence1)")
    parser.add_argument("--col2", default="sentence2", help="second sentence column (default: sentence2)")
    gold_help = f"gold similarity column (default: {gold_default})" if gold_default else "gold similarity column, if any"
    parser.add_argument("--gold", default=gold_default, help=gold_help)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model directory or cached hub name (default: {DEFAULT_MODEL})")
    add_trust_option(parser)
    add_prompt_option(parser, texts="both sentences")


def run_sts(args: argparse.Namespace) -> int:
    from kbatch.commands.sts import sts

    options = {"col1": args.col1, "col2": args.col2, "gold": args.gold, "model": args.model, "quantize": args.quantize,
               "token_budget": args.token_budget, "prompt": args.prompt, "trust_remote_code": args.trust_remote_code}
    return run_and_summarize(sts, args, "sts", **options)


def run_evaluate(args: argparse.Namespace) -> int:
    from kbatch.commands.sts import evaluate

    result = evaluate(args.sts, col1=args.col1, col2=args.col2, gold=args.gold, model=args.model, trust_remote_code=args.trust_remote_code,
                      prompt=args.prompt, cluster=cluster_file(args.cluster), progress=not args.json)
    if args.json:
        print(json.dumps({"file": args.sts, **result}))
    else:
        print(f"kbatch evaluate: {result['model']} on {Path(args.sts).name}: Spearman {result['spearman']:.2f}, "
              f"Pearson {result['pearson']:.2f} (x100, cosine, {result['pairs']:,} pairs)")
    return 0
