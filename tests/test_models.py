import pytest

from kbatch.errors import ModelError
from kbatch.models.resolve import resolve_model


def test_default_model_is_packaged_and_offline():
    spec = resolve_model()
    assert spec.name == "use-m3-ko" and spec.max_seq_length == 512
    assert len(spec.fingerprint) == 16


def test_hub_name_not_on_disk_fails_with_one_clear_line():
    with pytest.raises(ModelError) as info:
        resolve_model("jhgan/ko-sroberta-multitask")
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "`model`" in message and "\n" not in message


def test_missing_directory():
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("./models/nope")


def test_copied_model_has_another_fingerprint(tmp_path, model_path):
    import shutil

    copy = shutil.copytree(model_path, tmp_path / "model")
    (copy / "NOTE.txt").write_text("fine-tuned elsewhere")
    assert resolve_model(str(copy)).fingerprint != resolve_model().fingerprint
