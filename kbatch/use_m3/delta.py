"""A tuned use-m3 shipped as a delta: its trained parameters minus the package's, in fp16.

``kbatch train --base use-m3`` trains the CNN branches, the norms and the head (3.4 M
parameters); the 8-bit piece table is a buffer and stays as the package has it. So a
tuned model is the package's weights plus a few MB of differences, which kbatch ships
and builds offline like use-m3. Differences, not weights, are stored in fp16: their
rounding error is a fraction of the change, not of the weight. A delta names the base
weights it was made against (a digest of their content) and refuses any other base,
where the same differences would be noise.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kbatch.errors import ModelError
from kbatch.models.card import training_section
from kbatch.use_m3.tokenizer import EMBEDDING_MODULE

if TYPE_CHECKING:
    import torch

FORMAT = "kbatch-use-m3-delta/1"
KOREAN_DELTA = Path(str(resources.files("kbatch") / "data" / "use-m3-ko.delta.npz"))
_META = "__meta__"


@dataclass(frozen=True)
class Delta:
    """Differences to add to use-m3's state, and what they were made from."""

    path: Path
    base_digest: str
    base_version: str
    training: dict
    notes: str
    differences: dict[str, np.ndarray]

    def card(self, base_card: str) -> str:
        """The built model's card: the delta's notes, the base model's card, then how it was trained."""
        notes = f"{self.notes.strip()}\n\n" if self.notes.strip() else ""
        return notes + base_card + (training_section(self.training) if self.training else "")

    def apply(self, state: dict[str, torch.Tensor], version: str) -> dict[str, torch.Tensor]:
        """``state`` plus the differences; refused unless ``state`` is the base they were made against."""
        import torch

        found = state_digest(state)
        if found != self.base_digest:
            raise ModelError(f"{self.path}: a delta for use-m3 weights {self.base_digest} (package {self.base_version}), "
                             f"these are {found} (package {version}); install the package version it names")
        tuned = dict(state)
        for name, difference in self.differences.items():
            if name not in state or tuple(state[name].shape) != difference.shape:
                raise ModelError(f"{self.path}: {name} is not a use-m3 parameter of shape {difference.shape}")
            tuned[name] = state[name] + torch.from_numpy(difference.astype(np.float32))
        return tuned


def read_delta(path: str | os.PathLike[str]) -> Delta:
    """A delta file as :func:`write_delta` wrote it (numpy only, no pickled objects)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(str(arrays[_META]))
            differences = {name: arrays[name] for name in arrays.files if name != _META}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path}: not a use-m3 delta ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not a use-m3 delta (format {meta.get('format')!r}, expected {FORMAT})")
    return Delta(path, meta["base_digest"], meta["base_version"], meta["training"], meta["notes"], differences)


def write_delta(trained: str | os.PathLike[str], output: str | os.PathLike[str], notes: str = "") -> dict:
    """Write ``output``: what ``trained`` (a use-m3 from ``kbatch train --base use-m3``) changed, in fp16,
    with ``notes`` (Markdown) and the training record for the card of every model built from it.

    Refused when ``trained`` is not use-m3's modules or changed a frozen weight (the piece
    table): such a model is not the package's weights plus its trainable parameters.
    Returns the delta's metadata with the largest rounding error of its differences.
    """
    from kbatch.models.resolve import first_module, load_sentence_transformer, resolve_model
    from kbatch.use_m3.build import base_state, package_version

    spec = resolve_model(str(trained))
    if first_module(spec.path) != EMBEDDING_MODULE:
        raise ModelError(f"{trained}: not a use-m3 model (its first module is {first_module(spec.path) or 'a transformer'})")
    model = load_sentence_transformer(spec.path)
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    base = base_state()
    if state.keys() != base.keys():
        raise ModelError(f"{trained}: not a use-m3 model (its weights are not use-m3's: {sorted(state.keys() ^ base.keys())[:3]})")
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    for name in sorted(base.keys() - trainable):
        if not bool((state[name] == base[name]).all()):
            raise ModelError(f"{trained}: {name} differs from use-m3's, and a delta holds only trainable parameters")
    differences = {name: (state[name] - base[name]).numpy().astype(np.float16) for name in sorted(trainable)}
    worst = max(float(np.abs(differences[n].astype(np.float32) - (state[n] - base[n]).numpy()).max()) for n in differences)
    training_file = Path(spec.path) / "kbatch_training.json"
    training = json.loads(training_file.read_text(encoding="utf-8")) if training_file.is_file() else {}
    meta = {"format": FORMAT, "base_digest": state_digest(base), "base_version": package_version(), "training": training,
            "notes": notes, "parameters": sum(d.size for d in differences.values())}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=output.parent, prefix=f".{output.name}.", suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **{_META: np.array(json.dumps(meta, ensure_ascii=False))}, **differences)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp.name, 0o666 & ~umask)  # a file to ship, not a private temporary one
    os.replace(tmp.name, output)
    return meta | {"largest_rounding": worst}


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A content hash of a state dict (names, dtypes, shapes, bytes): the same weights give the
    same digest whatever library versions wrote the model folder."""
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name].detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    """A delta file's content hash: part of the built model's directory name, so a new delta builds anew."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
