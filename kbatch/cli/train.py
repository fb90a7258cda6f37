"""``kbatch train``: options, examples, and the call into :func:`kbatch.commands.train.train`."""

from __future__ import annotations

import argparse

from kbatch.cli.common import add_command, add_debug_option, add_prompt_option, add_trust_option
from kbatch.models.resolve import DEFAULT_BASE_MODEL

EXAMPLES = """\
examples:
  python -m kbatch train --task sts --train ../shared/data/korsts/sts-train.tsv \\
      --dev ../shared/data/korsts/sts-dev.tsv -o models/minilm-korsts --epochs 1
      regression on KorSTS similarity (score / 5, cosine-similarity loss); keeps the best dev epoch

  python -m kbatch train --task nli --train pairs.tsv -o models/minilm-nli
      anchor, positive[, negative] columns (or KorNLI's sentence1, sentence2, gold_label):
      multiple-negatives ranking loss, in-batch negatives

  python -m kbatch evaluate --sts ../shared/data/korsts/sts-test.tsv --model models/minilm-korsts
  python -m kbatch embed corpus.parquet --model models/minilm-korsts

Training runs on this machine: on GPUs in fp16; on several GPUs of one machine through
torch's launcher, e.g.  torchrun --nproc_per_node 4 -m kbatch train --task sts ...
The output is a sentence-transformers model directory (the best checkpoint by dev
Spearman when --dev is given) with a model card (README.md) and kbatch_training.json:
data, bad rows left out, loss, settings, dev Spearman before and after, time.
TSV is read as KorSTS is written (no quoting); bad rows are reported by line number.
"""


def add_parser(commands) -> None:
    parser = add_command(commands, "train", "fine-tune a Sentence-BERT model on Korean STS or NLI pairs",
                         "Fine-tune a sentence-transformers model and save the best checkpoint as a model directory.", EXAMPLES)
    parser.add_argument("--task", required=True, choices=["sts", "nli"], help="sts: scored pairs; nli: anchor/positive pairs")
    parser.add_argument("--train", required=True, help="training pairs (TSV/CSV with a header row)")
    parser.add_argument("--dev", help="KorSTS-style scored pairs to evaluate on after each epoch")
    parser.add_argument("--nli", help="with --task sts: NLI pairs to train on as well (multiple-negatives ranking loss)")
    parser.add_argument("-o", "--output", required=True, help="new directory for the trained model")
    parser.add_argument("--base", default=DEFAULT_BASE_MODEL,
                        help="model to start from: a transformer, or use-m3 (piece table frozen) (default: %(default)s, packaged)")
    add_trust_option(parser)
    add_prompt_option(parser, texts="every training and dev sentence")
    parser.add_argument("--epochs", type=float, default=1.0, help="(default: 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="(default: 16)")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate (default: 5e-5)")
    parser.add_argument("--warmup", type=float, default=0.1, help="share of steps warming up the learning rate (default: 0.1)")
    parser.add_argument("--loss", help="sts: cosine (default) or cosent; nli: mnrl")
    parser.add_argument("--seed", type=int, default=0, help="(default: 0)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_debug_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.train import TrainSettings, train

    settings = TrainSettings(args.epochs, args.batch_size, args.lr, args.warmup, args.seed, args.loss)
    card = train(args.task, args.train, args.output, dev=args.dev, nli=args.nli, base=args.base, trust_remote_code=args.trust_remote_code,
                 prompt=args.prompt, settings=settings, progress=args.progress)
    quality = ""
    if card["dev_before"] and card["dev_after"]:
        quality = f"; dev Spearman {card['dev_before']['spearman']:.2f} -> {card['dev_after']['spearman']:.2f}"
    print(f"kbatch train: {card['train']['rows']:,} pairs ({card['train']['bad_rows']:,} bad rows left out){quality} "
          f"in {card['seconds']:.0f} s -> {args.output}")
    return 0
