import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_code_is_ruff_clean():
    done = subprocess.run(["ruff", "check", "kbatch", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
