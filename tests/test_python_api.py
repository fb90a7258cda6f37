"""The Python API: ``from kbatch import embed`` costs nothing until used, and the README's
script runs as written, while the same script without its main guard stops in one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import kbatch
from kbatch.engine.main_guard import is_guarded
from kbatch.errors import KbatchError, MainGuardError

ROOT = Path(__file__).resolve().parents[1]
GUARD = 'if __name__ == "__main__":'


def python(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run this Python on ``args`` as a user would, with this checkout's kbatch first on the path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def readme_script() -> str:
    """The README's Python example: the first ```python block after the line starting "From Python"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^From Python.*?^```python\n(.*?)^```", text, re.S | re.M)
    assert found, "README.md has no ```python block after a line starting 'From Python'"
    return found.group(1)


def without_guard(script: str) -> str:
    """``script`` with its guard line removed and the block under it moved to the top level."""
    head, _, body = script.partition(GUARD)
    body = body.split("\n", 1)[1]  # what followed the guard on its line is a comment
    return head + textwrap.dedent(body)


def test_import_kbatch_loads_no_command() -> None:
    done = python(["-c", "import sys, kbatch; print(sorted(m for m in sys.modules "
                         "if m.split('.')[0] in ('torch', 'dask', 'pandas', 'distributed') or m.startswith('kbatch.')))"], ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_commands_are_importable_from_kbatch() -> None:
    for name in kbatch.__all__:
        function = getattr(kbatch, name)
        assert callable(function) and function.__module__.startswith("kbatch.commands."), name
    assert set(kbatch.__all__) <= set(dir(kbatch))
    assert {"embed", "evaluate", "train"} <= set(kbatch.__all__)
    with pytest.raises(AttributeError, match="no attribute 'embedd'"):
        kbatch.embedd  # noqa: B018


@pytest.mark.parametrize(
    ("source", "line", "guarded"),
    [
        ('if __name__ == "__main__":\n    run()\n', 2, True),
        ("if '__main__' == __name__:\n    x = 1\n    run(\n        x)\n", 4, True),
        ('if __name__ != "__main__":\n    pass\nelse:\n    run()\n', 4, True),
        ('import os\nif __name__ == "__main__" and not os.environ.get("X"):\n    run()\n', 3, True),
        ('def main():\n    run()\n\nif __name__ == "__main__":\n    main()\n', 2, True),
        ('def main():\n    run()\n\nmain()\n', 4, False),
        ('if __name__ == "__main__":\n    pass\nrun()\n', 3, False),
        ('if __name__ == "kbatch":\n    run()\n', 2, False),
        ("run()\n", 1, False),
    ],
)
def test_is_guarded(source: str, line: int, guarded: bool) -> None:
    assert is_guarded(source, line) is guarded


def test_main_guard_error_is_a_kbatch_error_that_exits_quietly() -> None:
    error = MainGuardError("put the calls under it")
    assert isinstance(error, KbatchError) and isinstance(error, SystemExit)
    assert error.code == error.exit_code == 9


CHECK = "from kbatch.engine.main_guard import check_main_guard\n"


@pytest.mark.parametrize(
    ("script", "refused"),
    [
        (CHECK + "check_main_guard()\n", True),
        (CHECK + "def main():\n    check_main_guard()\n\nmain()\n", True),
        (CHECK + 'def main():\n    check_main_guard()\n\nif __name__ == "__main__":\n    main()\n', False),
        # A thread's stack does not hold the script's top level: not refused, not guessed.
        (CHECK + "import threading\nt = threading.Thread(target=check_main_guard)\nt.start()\nt.join()\n", False),
    ],
)
def test_check_main_guard_in_a_script(tmp_path: Path, script: str, refused: bool) -> None:
    (tmp_path / "job.py").write_text(script)
    done = python(["job.py"], tmp_path)
    if refused:
        assert (done.returncode, done.stdout) == (9, "")
        assert done.stderr.startswith("kbatch: error: job.py line ") and done.stderr.count("\n") == 1
    else:
        assert (done.returncode, done.stderr) == (0, "")


def test_check_main_guard_leaves_python_c_alone(tmp_path: Path) -> None:
    done = python(["-c", CHECK + "check_main_guard()"], tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.fixture
def readme_workdir(tmp_path: Path, reviews) -> Path:
    """The README's paths in a scratch folder: 100 reviews, one worker, no GPU workers."""
    (tmp_path / "examples").mkdir()
    reviews.head(100).to_parquet(tmp_path / "examples" / "reviews.parquet")
    (tmp_path / "cluster.yaml").write_text('n_workers: 1\ndashboard_address: ":0"\ngpu_workers: 0\n')
    return tmp_path


def test_readme_script_runs_as_written(readme_workdir: Path) -> None:
    script = readme_script()
    assert "from kbatch import " in script and GUARD in script
    (readme_workdir / "run.py").write_text(script)
    done = python(["run.py"], readme_workdir, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == ["embed", "tokenize"]
    assert (readme_workdir / "out" / "emb" / "_kbatch.json").exists()


def test_readme_script_without_guard_fails_in_one_line(readme_workdir: Path) -> None:
    script = without_guard(readme_script())
    assert GUARD not in script
    (readme_workdir / "run.py").write_text(script)
    done = python(["run.py"], readme_workdir, timeout=120)
    assert (done.returncode, done.stdout) == (MainGuardError.exit_code, "")
    first_call = next(n for n, line in enumerate(script.splitlines(), 1) if "embed(" in line)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and GUARD in lines[0] and lines[0].startswith(f"kbatch: error: run.py line {first_call} "), done.stderr
    assert not (readme_workdir / "out" / "emb" / "_kbatch.json").exists()
