"""``kbatch inspect``: one text through normalization, an analyzer and a model's tokenizer."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER, AnalyzerSpec
from kbatch.analyzers.userdict import read_user_dict
from kbatch.cli.common import add_command, add_debug_option, add_prompt_option, add_trust_option
from kbatch.errors import InputError
from kbatch.models.resolve import DEFAULT_MODEL

EXAMPLES = """\
examples:
  python -m kbatch inspect "아버지가방에들어가신다"
  python -m kbatch inspect "노이즈캔슬링 이어폰" --analyzer kiwi --user-dict my_words.txt
  python -m kbatch inspect --file review.txt --model /models/ko-sroberta --json

Read 'unknown' and 'tokens per character' before trusting a model on Korean: a model
whose tokenizer maps Hangul to its unknown token, or to single jamo, embeds it poorly.
"""


def add_parser(commands) -> None:
    inspect = add_command(
        commands, "inspect", "show what the analyzer and the model make of one text",
        "Print one text normalized, as morphemes with tags, and as the model's subword tokens and ids.",
        EXAMPLES,
    )
    inspect.add_argument("text", nargs="?", help="the text (or use --file)")
    inspect.add_argument("--file", help="read the text from this UTF-8 file")
    inspect.add_argument("--analyzer", default=DEFAULT_ANALYZER, choices=list(ANALYZERS), help=f"(default: {DEFAULT_ANALYZER})")
    inspect.add_argument("--user-dict", help="file of words to keep whole: 'word [TAG]' per line")
    inspect.add_argument("--model", default=DEFAULT_MODEL, help=f"model directory or cached hub name (default: {DEFAULT_MODEL})")
    add_trust_option(inspect)
    add_prompt_option(inspect)
    inspect.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_debug_option(inspect)
    inspect.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.inspect import inspect_text

    if (args.text is None) == (args.file is None):
        raise InputError("give the text as an argument or --file FILE, not both")
    text = args.text if args.file is None else _read(args.file)
    spec = AnalyzerSpec(args.analyzer, read_user_dict(args.user_dict) if args.user_dict else (), threads=1)
    report = inspect_text(text, spec, args.model, trust_remote_code=args.trust_remote_code, prompt=args.prompt)
    if args.json:
        json.dump({**asdict(report), "unknown_share": report.unknown_share}, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        print(report.format())
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--file {path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"--file {path}: not UTF-8 (byte {exc.start})") from None
