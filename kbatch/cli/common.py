"""Options every partitioned command shares, so they read and behave the same."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from kbatch.engine.manifest import RunResult
from kbatch.models.resolve import DEFAULT_MODEL


def add_command(commands, name: str, summary: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its examples, laid out as written."""
    return commands.add_parser(
        name, help=summary, description=description, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_input_options(
    parser: argparse.ArgumentParser, output_suffix: str, text_help: str | None, partition_default: str = "at most 1,000 rows"
) -> None:
    """Source, output, columns and partitioning; ``text_help=None`` for commands with their own text columns."""
    parser.add_argument("source", nargs="+", help="Parquet/CSV/TSV/JSONL file(s), a directory, or a quoted glob")
    parser.add_argument("-o", "--output", help=f"output directory (default: out/<input name>-{output_suffix})")
    if text_help:
        parser.add_argument("--text-col", default="text", help=f"{text_help} (default: text)")
    parser.add_argument("--id-col", help="column copied to 'id' (default: the row number across the input)")
    parser.add_argument("--partition-rows", type=int, help=f"rows per partition (default: row groups, {partition_default})")
    parser.add_argument("--keep-cols", type=_names, default=(),
                        help="comma list of input columns (or key=value folder keys, e.g. dt,category) copied to the output next to id")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace an output made with other parameters")
    parser.add_argument("--cluster", help="cluster file (default: ./cluster.yaml if present, else a local cluster)")
    parser.add_argument("--report", help="write a Dask performance report (HTML) here")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_debug_option(parser)


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """--trust-remote-code: the only way a model folder's own Python code runs (commands that load a model)."""
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let the model folder run its own Python code (auto_map, custom module classes); "
                             "only for folders you trust")


def add_prompt_option(parser: argparse.ArgumentParser, flag: str = "--prompt", texts: str = "every text",
                      default: str = "the model's default prompt (e5-small: query; use-m3 and MiniLM have none)") -> None:
    """A model's prompt by name, as sentence-transformers' ``prompt_name`` (commands that embed)."""
    parser.add_argument(flag, metavar="NAME|none",
                        help=f"the model's prompt put before {texts}, by name (e5-small: query, passage); default: {default}; "
                             "none: no prompt")


def add_vectors_options(parser: argparse.ArgumentParser) -> None:
    """Where a command that clusters vectors (topics, dedup) gets them: reused, or embedded with a model."""
    parser.add_argument("--embeddings", help="reuse vectors: a 'kbatch embed' output, or Parquet with id and embedding")
    parser.add_argument("--model", help=f"model for embedding (default: {DEFAULT_MODEL}, or that of --embeddings)")
    add_trust_option(parser)
    add_prompt_option(parser)


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")


def run_and_summarize(command: Callable[..., RunResult], args: argparse.Namespace, output_suffix: str, **params) -> int:
    """Call a partitioned command on the parsed sources and print its one-line summary.

    The output defaults to ``out/<first source's name>-<output_suffix>``.
    """
    source = args.source if len(args.source) > 1 else args.source[0]
    output = args.output or f"out/{Path(args.source[0].rstrip('/')).stem.replace('*', 'all')}-{output_suffix}"
    result = command(source, output, **params, **run_options(args))
    print(f"kbatch {result.summary()}")
    return 0


def run_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :class:`kbatch.engine.frame.RunOptions` from parsed options."""
    return {
        **({"text_col": args.text_col} if "text_col" in args else {}),
        "id_col": args.id_col,
        "partition_rows": args.partition_rows,
        **({"keep_cols": args.keep_cols} if args.keep_cols else {}),
        "overwrite": args.overwrite,
        "cluster": cluster_file(args.cluster),
        "report": args.report,
        "progress": args.progress,
    }


def _names(text: str) -> tuple[str, ...]:
    """``dt, category`` → ``("dt", "category")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def cluster_file(path: str | None) -> str | None:
    if path is not None:
        return path
    return "cluster.yaml" if Path("cluster.yaml").is_file() else None
