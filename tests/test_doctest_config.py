"""The doctests of kbatch's modules run with ``python -m pytest``; a module whose optional
package is missing is skipped naming its extra (the root conftest.py), so that map must
know every extra kbatch's own modules may need."""

from __future__ import annotations

import importlib.util
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# Extras that kbatch's modules never import: the test tools and the benches' comparisons.
NOT_IMPORTED_BY_KBATCH = {"test", "bench"}


def root_conftest():
    spec = importlib.util.spec_from_file_location("kbatch_root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doctests_run_with_the_tests() -> None:
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "kbatch" in options["testpaths"] and "--doctest-modules" in options["addopts"]


def test_every_extra_is_known_to_the_doctest_skip() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert set(root_conftest().OPTIONAL_PACKAGES.values()) == extras - NOT_IMPORTED_BY_KBATCH
