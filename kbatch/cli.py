"""Command line: parse, validate, call into the library, print one summary line.

Exit codes: 0 ok, 1 unexpected error, 2 bad usage, 3 bad input, 4 output conflict,
5 model not available, 6 cluster problem, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kbatch import __version__
from kbatch.errors import KbatchError
from kbatch.models import DEFAULT_MODEL

EMBED_EXAMPLES = """\
examples:
  python -m kbatch embed examples/reviews.parquet
      embed the 'text' column into out/reviews-embeddings/ on a local cluster

  python -m kbatch embed corpus.parquet -o out/emb --text-col title --id-col product_id \\
      --model /models/ko-sroberta --cluster cluster.yaml --report out/emb-report.html
      another column, keep your ids, a Korean model directory, your cluster file,
      and a Dask performance report

  python -m kbatch embed 'data/*.parquet' -o out/emb --quantize int8
      int8 ONNX encoder on CPU: faster, slightly different vectors

Rerunning the same command resumes: finished partitions are kept. A different
model or option against the same output is refused unless --overwrite.
Read the output with pandas.read_parquet("out/emb") (one row per input row;
rows with null or empty text have a null embedding).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbatch",
        description="Korean text corpora to sentence embeddings on a Dask cluster.",
        epilog="Run 'kbatch COMMAND --help' for examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"kbatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    embed = commands.add_parser(
        "embed",
        help="embed a text column into Parquet vectors",
        description="Normalize, tokenize and embed one text column; write one Parquet file per partition.",
        epilog=EMBED_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    embed.add_argument("source", nargs="+", help="Parquet/CSV/TSV/JSONL file(s), a directory, or a quoted glob")
    embed.add_argument("-o", "--output", help="output directory (default: out/<input name>-embeddings)")
    embed.add_argument("--text-col", default="text", help="column to embed (default: text)")
    embed.add_argument("--id-col", help="column copied to 'id' (default: the row number across the input)")
    embed.add_argument("--model", default=DEFAULT_MODEL, help=f"model directory or cached hub name (default: {DEFAULT_MODEL}, packaged)")
    embed.add_argument("--partition-rows", type=int, help="rows per partition (default: row groups, at most 1,000 rows)")
    embed.add_argument("--no-normalize", dest="normalize", action="store_false", help="keep raw vectors instead of L2-normalizing")
    embed.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="stored vector type (default: float32)")
    embed.add_argument("--pooling", choices=["mean", "cls", "max"], help="override the model's own pooling")
    embed.add_argument("--quantize", choices=["int8"], help="int8 ONNX encoder on CPU: faster, cosine ~0.98 to exact")
    embed.add_argument("--token-budget", type=int, help="tokens per forward pass (default: measured per device)")
    embed.add_argument("--overwrite", action="store_true", help="replace an output made with other parameters")
    embed.add_argument("--cluster", help="cluster file (default: ./cluster.yaml if present, else a local cluster)")
    embed.add_argument("--report", help="write a Dask performance report (HTML) here")
    embed.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    embed.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    embed.set_defaults(run=_run_embed)
    return parser


def _run_embed(args: argparse.Namespace) -> int:
    from kbatch.embed import embed

    source = args.source if len(args.source) > 1 else args.source[0]
    output = args.output or f"out/{Path(args.source[0].rstrip('/')).stem.replace('*', 'all')}-embeddings"
    result = embed(
        source,
        output,
        text_col=args.text_col,
        id_col=args.id_col,
        model=args.model,
        partition_rows=args.partition_rows,
        normalize=args.normalize,
        dtype=args.dtype,
        pooling=args.pooling,
        quantize=args.quantize,
        token_budget=args.token_budget,
        overwrite=args.overwrite,
        cluster=_cluster_file(args.cluster),
        report=args.report,
        progress=args.progress,
    )
    print(f"kbatch {result.summary()}")
    return 0


def _cluster_file(path: str | None) -> str | None:
    if path is not None:
        return path
    return "cluster.yaml" if Path("cluster.yaml").is_file() else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KbatchError as exc:
        print(f"kbatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kbatch: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"kbatch: unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
