"""What pytest does across the checkout: ``python -m pytest`` also runs the docstring
examples of kbatch's modules (``--doctest-modules``, testpaths in pyproject.toml).

This file sits at the root because a conftest only reaches the folders under it. A module
that cannot be imported because an optional package (an extra in pyproject.toml) is
missing has its doctests skipped with the extra to install; any other import error still
fails collection.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "kbatch"

# Import name -> the extra of pyproject.toml that installs it.
OPTIONAL_PACKAGES = {
    "dask_cuda": "gpu",
    "onnx": "quantize",
    "onnxruntime": "quantize",
    "kiwipiepy": "kiwi",
    "faiss": "ann",
    "matplotlib": "plot",
    "koreanize_matplotlib": "plot",
    "datasets": "train",
    "accelerate": "train",
    "s3fs": "s3",
}


def missing_extra(path: Path) -> str | None:
    """Why the doctests of kbatch module ``path`` cannot run here, or ``None`` when they can
    (or when its import fails for another reason, which the doctest collector reports)."""
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in OPTIONAL_PACKAGES:
            return f"{name} needs {top}, which is not installed: pip install 'kbatch[{OPTIONAL_PACKAGES[top]}]'"
    except Exception:
        pass
    return None


class NeedsExtra(pytest.File):
    """A module whose doctests cannot run here: collecting it is a skip that says why."""

    reason = ""

    def collect(self):
        pytest.skip(self.reason)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    collectors = yield
    if not (parent.config.getoption("doctestmodules") and file_path.suffix == ".py" and PACKAGE in file_path.parents):
        return collectors
    reason = missing_extra(file_path)
    if reason is None:
        return collectors
    skipped = NeedsExtra.from_parent(parent, path=file_path)
    skipped.reason = reason
    return [skipped]


@pytest.fixture(autouse=True)
def _doctests_run_in_a_scratch_folder(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docstring example reads ``examples/`` and writes ``out/`` as a user would, from a scratch
    folder (with ``examples`` linked in), so the checkout gets no ``out/``."""
    if isinstance(request.node, pytest.DoctestItem):
        (tmp_path / "examples").symlink_to(ROOT / "examples")
        monkeypatch.chdir(tmp_path)
