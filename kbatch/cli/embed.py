"""``kbatch embed``: options, examples, and the call into :func:`kbatch.commands.embed.embed`."""

from __future__ import annotations

import argparse

from kbatch.cli.common import add_command, add_input_options, add_prompt_option, add_run_options, add_trust_option, run_and_summarize
from kbatch.models.resolve import DEFAULT_MODEL

EXAMPLES = """\
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


def add_parser(commands) -> None:
    embed = add_command(
        commands, "embed", "embed a text column into Parquet vectors",
        "Normalize, tokenize and embed one text column; write one Parquet file per partition.",
        EXAMPLES,
    )
    add_input_options(embed, "embeddings", "column to embed")
    embed.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"model directory, a name from 'kbatch models list', or a cached hub name (default: {DEFAULT_MODEL})")
    add_trust_option(embed)
    add_prompt_option(embed)
    embed.add_argument("--no-normalize", dest="normalize", action="store_false", help="keep raw vectors instead of L2-normalizing")
    embed.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="stored vector type (default: float32)")
    embed.add_argument("--pooling", choices=["mean", "cls", "max"], help="override the model's own pooling")
    embed.add_argument("--quantize", choices=["int8"], help="int8 ONNX encoder on CPU: faster, cosine ~0.98 to exact")
    embed.add_argument("--token-budget", type=int, help="tokens per forward pass (default: measured per device)")
    embed.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                       help="model weights and math: auto (default) = fp16 on GPU workers, fp32 on CPU")
    embed.add_argument("--cache", help="embedding cache directory: texts embedded before (same model) are not encoded again")
    add_run_options(embed)
    embed.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kbatch.commands.embed import embed

    options = {"model": args.model, "normalize": args.normalize, "dtype": args.dtype, "pooling": args.pooling,
               "quantize": args.quantize, "token_budget": args.token_budget, "cache": args.cache,
               "precision": args.precision, "prompt": args.prompt, "trust_remote_code": args.trust_remote_code}
    return run_and_summarize(embed, args, "embeddings", **options)
