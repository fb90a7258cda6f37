"""Hostile and broken model folders, and model identity: what a user could hand kbatch as --model.

Every attack below builds a model folder whose code, if it ever ran, would write a marker
file. kbatch must refuse each one in the client (exit 5, one line naming the folder, before
any cluster starts), refuse it again where a worker loads models, and never run it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

import kbatch.models.digest
from kbatch.cli import build_parser, main
from kbatch.errors import ModelError, OutputConflictError
from kbatch.models.resolve import fingerprint, load_sentence_transformer, resolve_model

EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()[:16]


@pytest.fixture(scope="module")
def minilm() -> Path:
    return Path(resolve_model("all-MiniLM-L6-v2").path)


@pytest.fixture
def marker(tmp_path) -> Path:
    """The file hostile code writes: it must never exist."""
    return tmp_path / "hostile-code-ran"


def copy_model(source: Path, target: Path) -> Path:
    """``source`` copied, its files over 1 MiB linked rather than copied (the attacks change small files only)."""

    def link_big(src: str, dst: str) -> None:
        if os.path.getsize(src) > 1 << 20:
            os.symlink(src, dst)
        else:
            shutil.copy2(src, dst)

    return Path(shutil.copytree(source, target, copy_function=link_big))


def hostile_code(marker: Path, body: str = "") -> str:
    """Python that leaves ``marker`` behind if it ever runs."""
    return f"open({str(marker)!r}, 'w').write('ran')\n{body}"


def edit_json(file: Path, **changes) -> None:
    data = json.loads(file.read_text())
    file.write_text(json.dumps({**data, **changes}))


def set_module_type(model: Path, index: int, kind: str) -> None:
    modules = json.loads((model / "modules.json").read_text())
    modules[index]["type"] = kind
    (model / "modules.json").write_text(json.dumps(modules))


# --- the attacks: each edits a copy of a good model ------------------------------------------------


def module_named_kbatch_with_a_kbatch_py(model: Path, marker: Path) -> None:
    """modules.json names ``kbatch.Anything``; sentence-transformers would import the folder's kbatch.py."""
    set_module_type(model, 1, "kbatch.Anything")
    (model / "kbatch.py").write_text(hostile_code(marker, "class Anything: pass\n"))


def module_of_the_folders_own(model: Path, marker: Path) -> None:
    set_module_type(model, 1, "evil.Pooling")
    (model / "evil.py").write_text(hostile_code(marker, "class Pooling: pass\n"))


def kbatch_class_that_does_not_exist(model: Path, marker: Path) -> None:
    set_module_type(model, 1, "kbatch.use_m3.modules.Pooling")


def auto_map_in_config(model: Path, marker: Path) -> None:
    edit_json(model / "config.json", auto_map={"AutoConfig": "modeling_x.XConfig", "AutoModel": "modeling_x.XModel"})
    (model / "modeling_x.py").write_text(hostile_code(marker))


def auto_map_in_tokenizer_config(model: Path, marker: Path) -> None:
    edit_json(model / "tokenizer_config.json", auto_map={"AutoTokenizer": ["tokenization_x.XTokenizer", None]})
    (model / "tokenization_x.py").write_text(hostile_code(marker))


def dense_activation_from_the_folder(model: Path, marker: Path) -> None:
    """A Dense layer whose activation is the folder's class: untrusted, sentence-transformers would
    silently swap in Tanh (other vectors); trusted, it imports the folder's file."""
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    (model / "2_Dense").mkdir()
    (model / "2_Dense" / "config.json").write_text(
        json.dumps({"in_features": 384, "out_features": 384, "bias": True, "activation_function": "evil.Activation"})
    )
    (model / "evil.py").write_text(hostile_code(marker, "class Activation: pass\n"))


ATTACKS = [
    module_named_kbatch_with_a_kbatch_py,
    module_of_the_folders_own,
    kbatch_class_that_does_not_exist,
    auto_map_in_config,
    auto_map_in_tokenizer_config,
    dense_activation_from_the_folder,
]


@pytest.fixture(params=ATTACKS, ids=lambda attack: attack.__name__)
def hostile(request, tmp_path, minilm, marker) -> Path:
    model = copy_model(minilm, tmp_path / "m")
    request.param(model, marker)
    return model


@pytest.fixture
def unreachable_cluster(tmp_path) -> Path:
    """A cluster file that fails (exit 6) when read: a refusal must come before it is."""
    path = tmp_path / "cluster.yaml"
    path.write_text("workers: 3\n")
    return path


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("kbatch: error: ")
    return lines[0]


def test_embed_refuses_the_folder_before_any_cluster(hostile, marker, tmp_path, reviews_file, unreachable_cluster, capsys):
    code = main(["embed", str(reviews_file), "-o", str(tmp_path / "out"), "--model", str(hostile),
                 "--cluster", str(unreachable_cluster)])
    line = one_error_line(capsys)
    assert code == 5
    assert str(hostile) in line and "--trust-remote-code" in line
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_worker_refuses_the_folder_too(hostile, marker):
    with pytest.raises(ModelError, match="`trust_remote_code`"):
        load_sentence_transformer(str(hostile), "cpu")
    assert not marker.exists()


KORSTS = Path(__file__).resolve().parents[1] / "examples" / "korsts" / "sts-dev.tsv"


@pytest.mark.parametrize("command", [
    ["sts", "{pairs}", "-o", "{out}", "--gold", "score"], ["evaluate", "--sts", "{pairs}"],
    ["keywords", "{reviews}", "-o", "{out}"], ["inspect", "안녕하세요"], ["match", "{reviews}", "-o", "{out}"],
    ["topics", "{reviews}", "-o", "{out}"], ["dedup", "{reviews}", "-o", "{out}"],
    ["train", "--task", "sts", "--train", "{pairs}", "-o", "{out}", "--base"],
], ids=lambda command: command[0])
def test_every_command_that_loads_a_model_refuses_it_first(command, tmp_path, minilm, marker, reviews_file, unreachable_cluster,
                                                           capsys):
    model = copy_model(minilm, tmp_path / "m")
    auto_map_in_config(model, marker)
    args = [a.format(pairs=KORSTS, reviews=reviews_file, out=tmp_path / "out") for a in command]
    args += [str(model)] if args[-1] == "--base" else ["--model", str(model)]
    args += ["--cluster", str(unreachable_cluster)] if command[0] not in ("inspect", "train") else []
    assert main(args) == 5
    assert str(model) in one_error_line(capsys)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_the_folder_is_trusted_only_when_the_user_says_so(tmp_path, minilm, marker, capsys):
    model = copy_model(minilm, tmp_path / "m")
    module_named_kbatch_with_a_kbatch_py(model, marker)
    assert main(["inspect", "안녕하세요", "--model", str(model)]) == 5
    capsys.readouterr()
    assert main(["inspect", "안녕하세요", "--model", str(model), "--trust-remote-code"]) == 0
    assert resolve_model(str(model), trust_remote_code=True).trust_remote_code
    assert not resolve_model(str(minilm)).trust_remote_code


@pytest.mark.parametrize("command", ["embed", "sts", "evaluate", "match", "keywords", "topics", "train", "inspect"])
def test_every_model_command_takes_trust_remote_code(command):
    required = {"evaluate": ["--sts", "x"], "train": ["--task", "sts", "--train", "x", "-o", "y"], "inspect": ["text"],
                "match": ["x"]}.get(command, ["x"])
    args = build_parser().parse_args([command, *required, "--trust-remote-code"])
    assert args.trust_remote_code is True


def test_kbatch_modules_come_from_the_installed_package(tmp_path, model_path, marker):
    """use-m3 names kbatch's classes; a folder that also ships a ``kbatch`` package of its own
    loads without trusting anything, and with the installed classes."""
    from kbatch.use_m3.modules import UseM3Embedding, UseM3Head

    model = copy_model(Path(model_path), tmp_path / "use-m3")
    for package in (model / "kbatch", model / "kbatch" / "use_m3"):
        package.mkdir()
        (package / "__init__.py").write_text(hostile_code(marker))
    (model / "kbatch" / "use_m3" / "modules.py").write_text(hostile_code(marker))
    (model / "kbatch.py").write_text(hostile_code(marker))
    loaded = load_sentence_transformer(str(model), "cpu", trust_remote_code=False)
    assert type(loaded[0]) is UseM3Embedding and type(loaded[2]) is UseM3Head
    assert not marker.exists()


# --- folders that cannot load: one line from the client, not an error from a worker ---------------


def test_a_folder_without_a_tokenizer_fails_in_the_client(tmp_path, minilm, reviews_file, unreachable_cluster, capsys):
    model = copy_model(minilm, tmp_path / "m")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (model / name).unlink()
    code = main(["embed", str(reviews_file), "-o", str(tmp_path / "out"), "--model", str(model), "--cluster", str(unreachable_cluster)])
    line = one_error_line(capsys)
    assert code == 5 and str(model) in line and "tokenizer" in line


@pytest.mark.parametrize("name", ["config.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"])
def test_an_unreadable_config_fails_in_the_client(tmp_path, minilm, name):
    model = copy_model(minilm, tmp_path / "m")
    (model / name).write_text('{"hidden_size": 384,')
    with pytest.raises(ModelError) as info:
        resolve_model(str(model))
    assert str(model / name) in str(info.value) and "\n" not in str(info.value)


# --- identity --------------------------------------------------------------------------------------


@pytest.fixture
def kbatch_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KBATCH_CACHE_DIR", str(tmp_path / "kbatch-cache"))
    return tmp_path / "kbatch-cache"


def test_a_model_under_a_cache_directory_has_its_content_identity(tmp_path, minilm, model_path):
    hidden = copy_model(minilm, tmp_path / ".cache" / "minilm")
    plain = copy_model(minilm, tmp_path / "elsewhere" / "minilm")
    use_m3 = copy_model(Path(model_path), tmp_path / ".cache" / "use-m3")
    assert fingerprint(hidden) not in (EMPTY_DIGEST, fingerprint(use_m3))
    assert fingerprint(hidden) == fingerprint(plain)  # where a model lives is not part of what it is


def test_a_byte_changed_in_the_middle_of_the_weights_changes_identity(tmp_path, kbatch_cache):
    """The weights live outside the folder, behind a symlink: their content is what counts."""
    weights = tmp_path / "outside" / "weights.bin"
    weights.parent.mkdir()
    weights.write_bytes(bytes(range(256)) * (12 << 10))  # 3 MiB
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").symlink_to(weights)
    (model / "loop").symlink_to(model)  # followed once, not forever
    before = fingerprint(model)
    with weights.open("r+b") as handle:
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff")
    assert fingerprint(model) != before


def test_identity_is_remembered_outside_the_folder_and_rechecked_when_a_file_changes(tmp_path, minilm, kbatch_cache, monkeypatch):
    model = copy_model(minilm, tmp_path / "m")
    listing = sorted(model.rglob("*"))
    hashed = []
    digest_of = kbatch.models.digest._file_digest
    monkeypatch.setattr(kbatch.models.digest, "_file_digest", lambda file: hashed.append(file) or digest_of(file))
    first = fingerprint(model)
    assert len(hashed) == len([p for p in listing if p.is_file()])
    hashed.clear()
    assert fingerprint(model) == first and hashed == []  # the memo: nothing read again
    os.utime(model / "config.json")  # touched, same content
    assert fingerprint(model) == first and hashed == [model / "config.json"]
    stat = (model / "config.json").stat()
    time.sleep(0.05)  # file times tick coarsely: let the edit's ctime differ from the touch's
    (model / "config.json").write_text((model / "config.json").read_text().replace("bert", "xxxx"))
    os.utime(model / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, mtime set back
    assert fingerprint(model) != first
    assert sorted(model.rglob("*")) == listing  # nothing written into the model folder


def test_a_corrupt_memo_is_ignored_and_rebuilt(tmp_path, minilm, kbatch_cache):
    model = copy_model(minilm, tmp_path / "m")
    first = fingerprint(model)
    memos = list(kbatch_cache.iterdir())
    assert len(memos) == 1
    memos[0].write_bytes(b"\x00garbage{")
    assert fingerprint(model) == first
    json.loads(memos[0].read_text())


def test_another_model_on_an_output_is_refused_not_nothing_to_do(tmp_path, minilm, reviews, cluster, capsys):
    """Both models live under a .cache directory, which once hashed them both to the empty digest."""
    first = copy_model(minilm, tmp_path / ".cache" / "a")
    second = copy_model(minilm, tmp_path / ".cache" / "b")
    edit_json(second / "1_Pooling" / "config.json", pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    source = tmp_path / "reviews.parquet"
    reviews.head(20).to_parquet(source)
    config = tmp_path / "cluster.yaml"
    config.write_text(f"address: {cluster.client.scheduler.address}\n")
    common = ["embed", str(source), "-o", str(tmp_path / "out"), "--partition-rows", "10", "--cluster", str(config), "--no-progress"]
    assert main([*common, "--model", str(first)]) == 0
    capsys.readouterr()
    assert main([*common, "--model", str(second)]) == OutputConflictError.exit_code
    assert "--overwrite" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_downloads_bookkeeping_inside_the_model_is_not_its_identity(tmp_path, minilm, kbatch_cache):
    model = copy_model(minilm, tmp_path / "m")
    before = fingerprint(model)
    (model / ".cache" / "huggingface").mkdir(parents=True)
    (model / ".cache" / "huggingface" / "model.safetensors.metadata").write_text("downloaded at 2026-11-30T02:00")

    assert fingerprint(model) == before
