"""Screenshots of the pictures a person reads, taken by headless Chromium, to be looked at.

    python bench/screenshots.py [--out /tmp/shots] [--reuse]

1. The README's topic plot: ``kbatch topics examples/reviews.parquet --n-topics auto
   --plot topics.html`` as a user runs it, then the same topics drawn again from the saved
   outputs (PCA of the saved vectors, as ``--plot`` does) as HTML and as the matplotlib PNG,
   so a change to the plot code shows without fitting again (``--reuse``).
2. A crowded map: 40 synthetic topics with long Korean labels packed close together, the
   case where labels would overlap, as HTML and PNG.
3. The report of ``kbatch run jobs/nightly_product_matching.yaml --date 2026-11-26``, with
   the job's paths pointed into the work folder so nothing under ``out/`` is touched.

Writes OUT/topics.png (the CLI's page), OUT/topics-replot.png, OUT/topics-matplotlib.png,
OUT/crowded.png, OUT/crowded-matplotlib.png and OUT/report.png; work files go to OUT/work.
Needs ``chromium`` (Debian: ``apt-get install chromium fonts-noto-cjk``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from kbatch.jobs.report import write_run_report
from kbatch.topicmodel.plot import write_plot

ROOT = Path(__file__).resolve().parent.parent
REVIEWS = ROOT / "examples" / "reviews.parquet"
JOB = ROOT / "jobs" / "nightly_product_matching.yaml"
DATE = "2026-11-26"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")  # fmt: skip


def chromium() -> str | None:
    """The browser's command, under the names Debian, Ubuntu and Google use."""
    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def screenshot(page: Path, png: Path, size: tuple[int, int]) -> Path:
    """``page`` as Chromium draws it in a ``size`` window, with a fresh profile that is removed afterwards."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
    return png


def kbatch(*args: str) -> None:
    """One kbatch command in its own process, as a user runs it from the repository."""
    subprocess.run([sys.executable, "-m", "kbatch", *args], check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def readme_topics(work: Path, reuse: bool) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """The README's topics run (skipped with ``reuse`` when done), its table and its points redrawn from the saved vectors."""
    out, page = work / "topics", work / "topics.html"
    if not (reuse and (out / "topics.parquet").is_file()):
        kbatch("topics", str(REVIEWS), "--n-topics", "auto", "-o", str(out), "--plot", str(page), "--overwrite")
    table = pd.read_parquet(out / "topics.parquet")
    vectors = pd.read_parquet(out / "_embeddings", columns=["id", "embedding"])
    assigned = pd.read_parquet(out / "doc_topics", columns=["id", "topic"])
    texts = pd.read_parquet(REVIEWS, columns=["text"])["text"].to_numpy()
    return page, table, _pca_points(vectors.merge(assigned, on="id"), texts)


def _pca_points(documents: pd.DataFrame, texts: np.ndarray) -> pd.DataFrame:
    """The 2-D PCA of the unit vectors, as ``--plot`` draws them; without ``--id-col`` a document's id is its row."""
    from sklearn.decomposition import PCA

    vectors = np.stack(documents["embedding"].to_numpy()).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    xy = PCA(n_components=2, random_state=0).fit_transform(vectors)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "topic": documents["topic"], "text": texts[documents["id"].to_numpy()]})


def crowded(topics: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Many topics with long labels whose centres lie close together: what a default HDBSCAN run on a big corpus gives."""
    rng = np.random.default_rng(seed)
    words = ["배송", "포장", "가격", "할인", "품질", "디자인", "사이즈", "색상", "재구매", "교환", "환불", "고객센터", "만족", "추천"]
    sizes = rng.integers(20, 300, topics)
    centres = rng.normal(0, 1, (topics, 2))
    rows = [(t, *(centres[t] + rng.normal(0, 0.25, 2))) for t in range(topics) for _ in range(sizes[t])]
    rows += [(-1, *rng.normal(0, 1.3, 2)) for _ in range(1500)]
    points = pd.DataFrame(rows, columns=["topic", "x", "y"])
    table = pd.DataFrame({"topic": [-1, *range(topics)], "size": [1500, *sizes],
                          "keywords": [["영화"], *(list(rng.choice(words, 3, replace=False)) for _ in range(topics))]})  # fmt: skip
    return table, points


def job_report(work: Path) -> None:
    """The nightly job, run from a copy of the job file whose paths all lie in ``work``."""
    spec = yaml.safe_load(JOB.read_text(encoding="utf-8"))
    spec["inputs"] = {name: str(ROOT / path) for name, path in spec["inputs"].items()}
    spec["cache"], spec["output"] = str(work / "cache"), str(work / "nightly" / "{date}")
    shutil.rmtree(work / "nightly", ignore_errors=True)
    copy = work / "jobs" / JOB.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    kbatch("run", str(copy), "--date", DATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("/tmp/shots"))
    parser.add_argument("--reuse", action="store_true", help="reuse the topics run and the job run of an earlier call in OUT/work")
    args = parser.parse_args()
    if chromium() is None:
        sys.exit("screenshots: no chromium on PATH (Debian: apt-get install chromium fonts-noto-cjk)")
    out, work = args.out, args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    page, table, points = readme_topics(work, args.reuse)
    title = "README example, redrawn from the saved outputs"
    shots = [
        screenshot(page, out / "topics.png", (1400, 2000)),
        screenshot(Path(write_plot(work / "topics-replot.html", table, points, title)), out / "topics-replot.png", (1400, 2000)),
        Path(write_plot(out / "topics-matplotlib.png", table, points, title)),
    ]
    table, points = crowded()
    shots += [
        screenshot(Path(write_plot(work / "crowded.html", table, points, "40 crowded topics")), out / "crowded.png", (1400, 2400)),
        Path(write_plot(out / "crowded-matplotlib.png", table, points, "40 crowded topics")),
    ]
    night = work / "nightly" / DATE
    if not (args.reuse and (night / "_run.json").is_file()):
        job_report(work)
    report = write_run_report(night / "report.html", json.loads((night / "_run.json").read_text(encoding="utf-8")))  # the code as it is now
    shots.append(screenshot(Path(report), out / "report.png", (1400, 1400)))
    print("\n".join(map(str, shots)))


if __name__ == "__main__":
    main()
