"""Command line: parse, validate, call into the library, print one summary line.

Exit codes: 0 ok, 1 unexpected error, 2 bad usage, 3 bad input, 4 output conflict,
5 model not available, 6 cluster problem, 7 analyzer not available, 8 output locked by
another run, 130 interrupted. An output that cannot be written (disk full, permission
denied) is exit 4 with the path and reason.
"""

from __future__ import annotations

import argparse
import errno
import sys

from kbatch import __version__
from kbatch.cli import embed, inspection, jobs, keywords, match, models, sts, tokenize, topics, train
from kbatch.errors import KbatchError, OutputConflictError

# Disk full, no permission, read-only or over quota: the output cannot be written.
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbatch",
        description="Korean text corpora to morphemes, embeddings, matches, keywords and topics on a Dask cluster.",
        epilog="Run 'kbatch COMMAND --help' for examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"kbatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (embed, tokenize, sts, match, keywords, topics, inspection, train, jobs, models):
        command.add_parser(commands)
    return parser


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
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
            where = f" {exc.filename}" if exc.filename else ""
            print(f"kbatch: error: cannot write{where}: {exc.strerror or exc}; nothing incomplete was left under a final name",
                  file=sys.stderr)
            return OutputConflictError.exit_code
        if args.debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"kbatch: unexpected {type(exc).__name__}: {first} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
