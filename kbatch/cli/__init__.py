"""Command line: parse, validate, call into the library, print one summary line.

Exit codes: 0 ok, 1 unexpected error, 2 bad usage, 3 bad input, 4 output conflict,
5 model not available, 6 cluster problem, 7 analyzer not available, 8 output locked by
another run, 130 interrupted (9, a script without its main guard, is the Python API's).
An output that cannot be written (disk full, permission denied) is exit 4 with the path
and reason. Each failure is one line on stderr that names the run's log file, which holds
the traceback and what Dask and the workers logged (:mod:`kbatch.engine.logs`).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys

from kbatch import __version__
from kbatch.cli import dedup, embed, inspection, jobs, keywords, match, models, sts, tokenize, topics, train
from kbatch.engine.logs import run_log
from kbatch.errors import KbatchError, failure_line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbatch",
        description="Korean text corpora to morphemes, embeddings, matches, keywords and topics on a Dask cluster.",
        epilog="Run 'kbatch COMMAND --help' for examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"kbatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (embed, tokenize, sts, match, keywords, topics, dedup, inspection, train, jobs, models):
        command.add_parser(commands)
    return parser


def as_flags(message: str) -> str:
    """A library message on the command line: each `parameter` it names becomes its flag."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda found: "--" + found[1].replace("_", "-"), message)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with run_log(args.command) as log:
        try:
            return args.run(args)
        except (Exception, KeyboardInterrupt) as exc:
            message, code = failure_line(exc)
            message = as_flags(message)
            if code == KbatchError.exit_code and getattr(args, "debug", False):
                raise
            logging.getLogger("kbatch").error("kbatch %s: %s", args.command, message, exc_info=exc)
            print(f"kbatch: {message}" + (f" (details: {log})" if log else ""), file=sys.stderr)
            return code
