"""``kbatch tokenize``: options, examples, and the call into :func:`kbatch.commands.tokenize.tokenize`."""

from __future__ import annotations

import argparse

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER
from kbatch.analyzers.jvm import DEFAULT_JVM_HEAP_MB
from kbatch.cli.common import add_command, add_input_options, add_run_options, run_and_summarize

EXAMPLES = """\
examples:
  python -m kbatch tokenize examples/reviews.parquet -o out/tokens --pos nouns
      nouns of every review with MeCab-ko (the default analyzer), stopwords removed

  python -m kbatch tokenize corpus.parquet --analyzer okt --pos NNG,NNP,SL,SN --user-dict my_words.txt
      KoNLPy's Okt in each worker's own JVM; keep common/proper nouns, foreign words
      and numbers; words from my_words.txt stay whole

  python -m kbatch tokenize corpus.parquet --analyzer kkma --jvm-heap 2048
      Kkma needs about 1 GB of heap per worker

Analyzers: mecab (default, fastest, no Java), kiwi (pip install kiwipiepy),
okt, komoran, hannanum, kkma (KoNLPy; need Java). Every analyzer's tags are mapped
to one Sejong tag set (MeCab-ko's), so --pos means the same for all of them:
  nouns    NNG NNP NNB NR NP
  content  NNG NNP NR VV VA MAG XR SL SH SN   (meaning-bearing morphemes)
  all      every morpheme (the default)
Verbs and adjectives come out as stems: 먹었다 -> 먹/VV 었/EP 다/EF.
--user-dict: one word per line, optionally followed by a tag (default NNP):
  노이즈캔슬링 NNG
Output: id, tokens list<string>, tags list<string>; rows with null or empty text,
or that the analyzer rejected, have null tokens (counted in _kbatch.json).
"""


def add_parser(commands) -> None:
    tokenize = add_command(
        commands, "tokenize", "split a text column into Korean morphemes",
        "Normalize a text column and split it into morphemes with tags; write one Parquet file per partition.",
        EXAMPLES,
    )
    sizes = ", ".join(f"{name} {entry.partition_rows:,}" for name, entry in ANALYZERS.items())
    add_input_options(tokenize, "tokens", "column to analyze", f"at most {sizes}")
    tokenize.add_argument("--analyzer", default=DEFAULT_ANALYZER, choices=list(ANALYZERS), help=f"(default: {DEFAULT_ANALYZER})")
    tokenize.add_argument("--pos", default="all", help="nouns, content, all (default) or a comma list of tags, e.g. NNG,NNP,SL")
    tokenize.add_argument("--user-dict", help="file of words to keep whole: 'word [TAG]' per line (mecab, kiwi, okt, komoran)")
    tokenize.add_argument(
        "--stopwords", help="builtin, none, or a file of words to drop (default: builtin, or none with --pos all)"
    )
    tokenize.add_argument(
        "--jvm-heap", type=int, default=DEFAULT_JVM_HEAP_MB, metavar="MB",
        help=f"Java heap per worker for okt/komoran/hannanum/kkma (default: {DEFAULT_JVM_HEAP_MB})",
    )
    add_run_options(tokenize)
    tokenize.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.tokenize import tokenize

    options = {"analyzer": args.analyzer, "pos": args.pos, "user_dict": args.user_dict, "stopwords": args.stopwords,
               "jvm_heap_mb": args.jvm_heap}
    return run_and_summarize(tokenize, args, "tokens", **options)
