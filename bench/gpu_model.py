"""Carry all-MiniLM-L6-v2 to the GPU machine inside its 64 MiB limit.

    python bench/gpu_model.py carry REVIEWS_PARQUET CARRY_DIR   # here (bench/gpu_carry.sh)
    python bench/gpu_model.py unpack PACKED_DIR MODEL_DIR       # there (bench/gpu_check.sh)

The model's fp16 weights are 45 MB, and beside the use-m3 wheel, the dask-cuda wheels and the
reviews they do not fit one device call. ``pack`` stores every matrix as int8 with one fp16
scale per row (23 MB) and everything else as is; ``unpack`` rebuilds an fp32 model folder.
The rebuilt model has MiniLM's architecture and speed, and its weights differ from the
original by the rounding (``carry`` prints the cosine of the two on a few reviews). Both sides
of the GPU comparison, plain ``encode`` and kbatch, load the same rebuilt folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def pack(model_dir: Path, packed_dir: Path) -> None:
    shutil.copytree(model_dir, packed_dir, ignore=shutil.ignore_patterns(WEIGHTS))
    packed: dict[str, torch.Tensor] = {}
    for name, weight in load_file(model_dir / WEIGHTS).items():
        if weight.dim() == 2:
            scale = weight.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127
            packed[f"{name}::int8"] = torch.round(weight.float() / scale).to(torch.int8)
            packed[f"{name}::scale"] = scale.half()
        else:
            packed[name] = weight.half()
    save_file(packed, packed_dir / WEIGHTS)


def unpack(packed_dir: Path, model_dir: Path) -> None:
    shutil.copytree(packed_dir, model_dir, ignore=shutil.ignore_patterns(WEIGHTS))
    packed = load_file(packed_dir / WEIGHTS)
    weights = {}
    for name, tensor in packed.items():
        if name.endswith("::int8"):
            base = name.removesuffix("::int8")
            weights[base] = tensor.float() * packed[f"{base}::scale"].float()
        elif not name.endswith("::scale"):
            weights[name] = tensor.float()
    save_file(weights, model_dir / WEIGHTS)


def rounding_cosine(original: Path, packed: Path, texts: list[str]) -> float:
    """The smallest cosine between the original model's vectors and the rebuilt one's."""
    from sentence_transformers import SentenceTransformer

    rebuilt = packed.with_name(packed.name + "-rebuilt")
    unpack(packed, rebuilt)
    try:
        a, b = (SentenceTransformer(str(path), device="cpu").encode(texts, normalize_embeddings=True)
                for path in (original, rebuilt))
    finally:
        shutil.rmtree(rebuilt)
    return float((a * b).sum(axis=1).min())


def carry(reviews_path: Path, carry_dir: Path) -> None:
    """The reviews' text and the packed model, into ``carry_dir``."""
    import pandas as pd

    from kbatch.models.resolve import resolve_model

    reviews = pd.read_parquet(reviews_path, columns=["text"])
    reviews.to_parquet(carry_dir / "reviews_100k.parquet", compression="zstd")
    original = Path(resolve_model("all-MiniLM-L6-v2").path)
    pack(original, carry_dir / "minilm-int8")
    cosine = rounding_cosine(original, carry_dir / "minilm-int8", reviews.text.head(500).tolist())
    print(f"all-MiniLM-L6-v2 packed to int8: min cosine to the original on 500 reviews {cosine:.4f}")


if __name__ == "__main__":
    verb, source, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if verb == "carry":
        carry(source, target)
    elif verb == "unpack":
        unpack(source, target)
    else:
        sys.exit(f"gpu_model.py: unknown verb {verb!r} (carry or unpack)")
