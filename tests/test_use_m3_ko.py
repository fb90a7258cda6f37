"""use-m3-ko: ``kbatch train --base use-m3`` trains kbatch's own modules, and the Korean-tuned
use-m3 ships as a small delta that builds offline, the same every time, on its base only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kbatch.commands.train import TrainSettings, train
from kbatch.errors import ModelError
from kbatch.models.resolve import fingerprint, load_sentence_transformer, resolve_model
from kbatch.use_m3 import build_korean_model, build_model
from kbatch.use_m3.delta import KOREAN_DELTA, read_delta, write_delta

KORSTS_DEV = Path(__file__).resolve().parents[1] / "examples" / "korsts" / "sts-dev.tsv"
TEXTS = ["배송이 빠르고 포장도 꼼꼼해요", "한 남자가 기타를 치고 있다", "영화가 너무 지루했다"]


def vectors(path: str | Path) -> np.ndarray:
    return load_sentence_transformer(str(path)).encode(TEXTS, normalize_embeddings=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """use-m3 after a few steps on 24 real KorSTS pairs, and their close pairs as NLI anchor/positive
    pairs beside them (high learning rate: the change must show)."""
    import torch

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("train")
    pairs = pd.read_csv(KORSTS_DEV, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str).head(24)
    pairs.to_csv(folder / "train.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    close = pairs[pairs["score"].astype(float) >= 4].rename(columns={"sentence1": "anchor", "sentence2": "positive"})
    close[["anchor", "positive"]].to_csv(folder / "nli.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    card = train("sts", folder / "train.tsv", folder / "model", nli=folder / "nli.tsv", base="use-m3", progress=False,
                 settings=TrainSettings(batch_size=8, learning_rate=1e-3, loss="cosent"))
    assert card["nli"]["rows"] == len(close) >= 2
    return folder / "model"


def test_train_base_use_m3_trains_its_modules_and_saves_a_folder_kbatch_loads(trained):
    spec = resolve_model(str(trained))  # refuse_code passes: the modules are kbatch's own
    assert json.loads((trained / "modules.json").read_text())[0]["type"] == "kbatch.use_m3.modules.UseM3Embedding"
    assert json.loads((trained / "kbatch_training.json").read_text())["base_model"]["name"] == "use-m3"
    cosine = (vectors(spec.path) * vectors(resolve_model("use-m3").path)).sum(axis=1)
    assert cosine.min() > 0.5 and cosine.max() < 0.9999
    model = load_sentence_transformer(spec.path)
    assert not model[0].table.requires_grad and model[0].table.dtype.is_floating_point is False


def test_a_delta_rebuilds_the_trained_model_from_the_package(trained, tmp_path):
    meta = write_delta(trained, tmp_path / "tuned.delta.npz", "# tuned")
    assert meta["parameters"] == 3_386_112 and meta["largest_rounding"] < 1e-4
    assert (tmp_path / "tuned.delta.npz").stat().st_size < 8e6  # fp16 differences; the piece table is not in it
    built = build_model(tmp_path / "built", delta=tmp_path / "tuned.delta.npz")
    assert (vectors(built) * vectors(trained)).sum(axis=1).min() > 0.99999
    assert (built / "README.md").read_text().startswith("# tuned")


def test_use_m3_ko_builds_offline_with_a_fixed_fingerprint_and_its_own_vectors(tmp_path):
    first, second = build_korean_model(tmp_path / "a"), build_korean_model(tmp_path / "b")
    assert fingerprint(first) == fingerprint(second) == resolve_model("use-m3-ko").fingerprint
    assert "KorSTS" in (first / "README.md").read_text()
    cosine = (vectors(first) * vectors(resolve_model("use-m3").path)).sum(axis=1)
    assert cosine.min() > 0.5 and cosine.max() < 0.999


def test_a_delta_for_another_base_is_refused(tmp_path):
    delta = read_delta(KOREAN_DELTA)
    with np.load(KOREAN_DELTA) as arrays:
        meta = json.loads(str(arrays["__meta__"])) | {"base_digest": "0123456789abcdef", "base_version": "9.9"}
        np.savez(tmp_path / "other.npz", __meta__=np.array(json.dumps(meta)), **delta.differences)
    with pytest.raises(ModelError, match=r"a delta for use-m3 weights 0123456789abcdef \(package 9.9\), these are [0-9a-f]{16}"):
        build_model(tmp_path / "model", delta=tmp_path / "other.npz")
    assert not (tmp_path / "model").exists()


def test_only_a_use_m3_that_kept_its_piece_table_makes_a_delta(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    with pytest.raises(ModelError, match="all-MiniLM-L6-v2: not a use-m3 model"):
        write_delta("all-MiniLM-L6-v2", tmp_path / "x.npz")

    changed = tmp_path / "changed"
    changed.mkdir()
    for file in trained.rglob("*"):
        if file.is_file():
            (changed / file.relative_to(trained)).parent.mkdir(parents=True, exist_ok=True)
            (changed / file.relative_to(trained)).write_bytes(file.read_bytes())
    weights = load_file(changed / "model.safetensors")
    weights["table"][0, 0] += 1
    save_file(weights, changed / "model.safetensors")
    with pytest.raises(ModelError, match=r"0\.table differs from use-m3's"):
        write_delta(changed, tmp_path / "x.npz")
