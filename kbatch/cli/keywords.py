"""``kbatch keywords``: options, examples, and the call into :func:`kbatch.commands.keywords.keywords`."""

from __future__ import annotations

import argparse

from kbatch.analyzers import ANALYZERS, DEFAULT_ANALYZER
from kbatch.cli.common import add_command, add_input_options, add_prompt_option, add_run_options, add_trust_option, run_and_summarize
from kbatch.models.resolve import DEFAULT_MODEL

EXAMPLES = """\
examples:
  python -m kbatch keywords examples/reviews.parquet --top-n 5 --diversity 0.5 -o out/kw
      5 keywords per review, nouns and noun compounds, varied by MMR

  python -m kbatch keywords corpus.parquet --pos content --ngram 1 --top-n 3
      single morphemes of any meaning-bearing part of speech (nouns, verb stems, ...)

How it works (KeyBERT on Korean morphemes): candidates are runs of up to --ngram adjacent
morphemes that --pos keeps (stopwords removed), e.g. '배송 상태' from '배송상태가 좋아요';
each distinct candidate of a partition is embedded once and ranked by cosine to its
document's vector. --diversity 0 ranks by cosine only; towards 1 it prefers keywords
unlike those already chosen (Maximal Marginal Relevance).
Output: id, keywords list<string>, scores list<float32> (cosine to the document).
"""


def add_parser(commands) -> None:
    parser = add_command(
        commands, "keywords", "KeyBERT-style keywords of each text, from Korean morphemes",
        "Pick each text's keywords among its morpheme n-grams by cosine to the text's embedding.",
        EXAMPLES,
    )
    add_input_options(parser, "keywords", "column to find keywords in")
    parser.add_argument("--top-n", type=int, default=5, help="keywords per text (default: 5)")
    parser.add_argument("--diversity", type=float, default=0.0, help="0 (default) to 1: MMR diversity of the keywords")
    parser.add_argument("--ngram", type=int, default=2, help="longest candidate, in adjacent morphemes (default: 2)")
    parser.add_argument("--pos", default="nouns", help="nouns (default), content, all or a comma list of tags, e.g. NNG,NNP,SL")
    parser.add_argument("--analyzer", default=DEFAULT_ANALYZER, choices=list(ANALYZERS), help=f"(default: {DEFAULT_ANALYZER})")
    parser.add_argument("--stopwords", help="builtin (default), none, or a file of words never to pick")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers model name or path (default: %(default)s)")
    add_trust_option(parser)
    add_prompt_option(parser, texts="every text and keyword candidate")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.keywords import keywords

    options = {"top_n": args.top_n, "diversity": args.diversity, "ngram": args.ngram, "pos": args.pos, "analyzer": args.analyzer,
               "stopwords": args.stopwords, "model": args.model, "prompt": args.prompt,
               "trust_remote_code": args.trust_remote_code}
    return run_and_summarize(keywords, args, "keywords", **options)
