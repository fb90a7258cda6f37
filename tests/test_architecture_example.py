"""docs/ARCHITECTURE.md's worked example of a new command runs as written: one module."""

import importlib.util
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_the_worked_example_command_runs_resumes_and_describes_its_output(tmp_path, reviews, cluster):
    code = re.search(r"```python\n(.*?)```", (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8"), re.S)[1]
    module_path = tmp_path / "lengths.py"
    module_path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("lengths", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reviews.head(90).to_parquet(tmp_path / "reviews.parquet")

    result = module.lengths(tmp_path / "reviews.parquet", tmp_path / "lengths", partition_rows=30, client=cluster.client, progress=False)

    written = pd.read_parquet(tmp_path / "lengths")
    assert len(written) == 90 and list(written.columns) == ["id", "n_tokens", "truncated"]
    assert result.manifest["output_schema"] == {"id": "id", "n_tokens": "int32", "truncated": "bool"}
    assert result.manifest["counts"]["tokens"] == written.n_tokens.sum() > 0
    again = module.lengths(tmp_path / "reviews.parquet", tmp_path / "lengths", partition_rows=30, client=cluster.client, progress=False)
    assert again.manifest["partitions_reused"] == 3 and again.manifest["partitions_done"] == 0
