"""``kbatch dedup`` on real Korean reviews (NSMC, CC0: examples/reviews.parquet) with planted
near-duplicates: the ways one review is pasted again (spacing, repeated ㅋ, an emoji, a
particle changed)."""

import io
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from kbatch.commands.dedup import dedup
from kbatch.commands.embed import embed
from kbatch.duplicates.exact import dedup_keys
from kbatch.jobs.run import run_job
from kbatch.jobs.spec import load_job

REVIEWS = Path(__file__).resolve().parents[1] / "examples" / "reviews.parquet"
THRESHOLD = 0.95  # the bench's threshold
PARTICLES = (("는 ", "은 "), ("은 ", "는 "), ("가 ", "이 "), ("이 ", "가 "), ("를 ", "을 "), ("을 ", "를 "), ("도 ", "는 "))
PLANTS = {
    "spacing": lambda text: text.replace(" ", "", 2) if text.count(" ") >= 2 else text + " ",
    "laugh": lambda text: text + " ㅋㅋㅋㅋㅋㅋ",
    "emoji": lambda text: text + " 😂😂",
    "particle": lambda text: next((text.replace(a, b, 1) for a, b in PARTICLES if a in text), text + "요"),
}


def planted(reviews: pd.DataFrame, per_kind: int = 5) -> pd.DataFrame:
    """300 reviews of 25–100 characters, and ``per_kind`` copies of each kind of change of the first ones."""
    originals = reviews[reviews.text.str.len().between(25, 100)].head(300)
    copies = []
    for k, (kind, change) in enumerate(PLANTS.items()):
        for _, row in originals.iloc[k * per_kind : (k + 1) * per_kind].iterrows():
            copies.append({"review_id": f"{kind}-{row.review_id}", "text": change(row.text), "rating": row.rating})
    return pd.concat([originals, pd.DataFrame(copies)], ignore_index=True)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, cluster) -> tuple[Path, Path, pd.DataFrame]:
    """The planted corpus, its file and its vectors (embedded once for the module)."""
    work = tmp_path_factory.mktemp("dedup")
    frame = planted(pd.read_parquet(REVIEWS))
    frame.to_parquet(work / "planted.parquet", row_group_size=100)
    embed(work / "planted.parquet", work / "vectors", id_col="review_id", client=cluster.client, progress=False)
    return work / "planted.parquet", work / "vectors", frame


def run(cluster, source, output, **options):
    return dedup(source, output, id_col="review_id", client=cluster.client, progress=False, **options)


def test_every_planted_near_duplicate_joins_its_original(tmp_path, cluster, corpus):
    source, vectors, frame = corpus
    result = run(cluster, source, tmp_path / "out", embeddings=vectors, threshold=THRESHOLD)
    groups = pd.read_parquet(tmp_path / "out" / "groups.parquet")
    group_of = groups.set_index("id").group_id
    plants = frame[frame.review_id.str.contains("-")].review_id
    assert len(plants) == 20
    for plant in plants:  # "laugh-7276661" is a copy of review 7276661
        assert plant in group_of and group_of[plant] == group_of.get(plant.split("-", 1)[1]), plant
    # Hand-checked: the 300 original reviews are 300 different reviews, so no group holds two of them.
    originals = groups[~groups.id.str.contains("-")]
    assert originals.group_id.is_unique
    kept = pd.read_parquet(tmp_path / "out" / "kept").id
    assert len(kept) == result.manifest["counts"]["kept"] == 300
    assert set(groups.representative_id) <= set(kept)
    assert (groups.loc[groups.id == groups.representative_id, "cosine"] == 1.0).all()
    shares = result.manifest["thresholds"]
    assert [s["duplicates"] for s in shares] == sorted((s["duplicates"] for s in shares), reverse=True)
    chosen = next(s for s in shares if s["threshold"] == THRESHOLD)
    assert chosen["duplicates"] == result.manifest["counts"]["dropped"] == 20
    assert "<svg" in (tmp_path / "out" / "thresholds.html").read_text(encoding="utf-8")


def test_exact_pass_equals_pandas_drop_duplicates_on_the_normalized_text(tmp_path, cluster):
    """Normalized as embed normalizes, then folded: lower case, no spaces, no emoji, no runs of 3+."""
    frame = pd.read_parquet(REVIEWS)
    copies = frame.head(40).assign(review_id=lambda f: "copy-" + f.review_id,  # the same once normalized and folded
                                   text=lambda f: "  " + f.text.str.replace(" ", "\u200b", n=1).str.upper() + " 😂\u00a0")
    frame = pd.concat([frame, copies], ignore_index=True)
    frame.to_parquet(tmp_path / "reviews.parquet", row_group_size=500)
    result = run(cluster, tmp_path / "reviews.parquet", tmp_path / "out", exact_only=True, write_rows=True)
    expected = frame[~dedup_keys(frame.text)[0].duplicated()]
    kept = pd.read_parquet(tmp_path / "out" / "kept")
    assert kept.review_id.tolist() == expected.review_id.tolist()
    assert list(kept.columns) == ["review_id", "text", "rating"]
    assert result.manifest["counts"]["exact_duplicates"] == len(frame) - len(expected) >= 40
    assert result.manifest["outputs"]["plot"] is None


def test_previous_night_keeps_its_decisions(tmp_path, cluster, corpus):
    frame = corpus[2]
    originals = frame[~frame.review_id.str.contains("-")]
    plants = frame[frame.review_id.str.contains("-")]
    yesterday, tonight = tmp_path / "night-1.parquet", tmp_path / "night-2.parquet"
    originals.head(150).to_parquet(yesterday)
    pd.concat([originals.iloc[150:200], plants]).to_parquet(tonight)  # new reviews, and copies of yesterday's
    first = run(cluster, yesterday, tmp_path / "night-1", threshold=THRESHOLD)
    second = run(cluster, tonight, tmp_path / "night-2", threshold=THRESHOLD, previous=tmp_path / "night-1")
    groups = pd.read_parquet(tmp_path / "night-2" / "groups.parquet")
    yesterdays = set(pd.read_parquet(tmp_path / "night-1" / "kept").id)
    copied = groups[groups.id.isin(plants.review_id)]
    assert len(copied) == len(plants)
    assert (copied.representative_id == copied.id.str.split("-", n=1).str[1]).all()  # each copy points at yesterday's row
    assert set(groups.representative_id) - set(pd.read_parquet(tmp_path / "night-2" / "kept").id) <= yesterdays
    assert second.manifest["counts"]["duplicates_of_previous"] == len(plants)
    assert len(second.manifest["kept_sets"]) == 2 and first.manifest["counts"]["kept"] == 150


@pytest.mark.parametrize(("args", "message"), [
    (["--threshold", "1.5"], "--threshold must be in (0, 1], got 1.5"),
    (["--clusters", "0"], "--clusters must be at least 1, got 0"),
    (["--text-col", "title"], "no text column 'title'"),
    (["--previous", "{reviews}"], "--previous"),
])
def test_bad_input_is_one_line_and_exit_3(tmp_path, args, message):
    args = [a.format(reviews=REVIEWS) for a in args]
    done = subprocess.run([sys.executable, "-m", "kbatch", "dedup", str(REVIEWS), "-o", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0].startswith("kbatch: error:") and message in lines[0]


def test_output_inside_the_input_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    pd.read_parquet(REVIEWS).to_parquet(tmp_path / "data" / "reviews.parquet")
    done = subprocess.run([sys.executable, "-m", "kbatch", "dedup", str(tmp_path / "data"), "--exact-only", "-o",
                           str(tmp_path / "data" / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 4 and "inside the input directory" in done.stderr


def test_a_nightly_dedup_job_checks_each_night_against_the_last(tmp_path, cluster):
    """In a job, a dedup step gets last night's output as ``previous``: tonight's reposts of
    yesterday's reviews are duplicates of rows already kept."""
    reviews = pd.read_parquet(REVIEWS).drop_duplicates("text").head(200)
    reviews.head(150).to_parquet(tmp_path / "2026-11-25.parquet")
    pd.concat([reviews.iloc[150:], reviews.head(20)]).to_parquet(tmp_path / "2026-11-26.parquet")  # 20 reposted
    (tmp_path / "cluster.yaml").write_text(f"address: {cluster.client.scheduler.address}\n")
    job = {"name": "nightly_dedup", "cluster": str(tmp_path / "cluster.yaml"),
           "inputs": {"reviews": str(tmp_path / "{date}.parquet")},
           "steps": [{"name": "unique", "command": "dedup", "input": "reviews",
                      "options": {"exact_only": True, "id_col": "review_id"}}],
           "output": str(tmp_path / "nights" / "{date}")}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))

    first = run_job(load_job(tmp_path / "job.yaml"), "2026-11-25", progress=False, log=io.StringIO())
    second = run_job(load_job(tmp_path / "job.yaml"), "2026-11-26", progress=False, log=io.StringIO())

    assert first["steps"][0]["counts"]["kept"] == 150
    assert second["steps"][0]["counts"]["duplicates_of_previous"] == 20
    assert len(pd.read_parquet(tmp_path / "nights" / "2026-11-26" / "unique" / "kept")) == 50


def test_the_readme_dedup_commands_run_as_written(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Near-duplicates", 1)[1].split("\n## ", 1)[0]
    commands = [shlex.split(line) for line in section.splitlines() if line.startswith("python -m kbatch dedup ")]
    assert len(commands) == 2
    (tmp_path / "examples").symlink_to(REVIEWS.parent)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        done = subprocess.run([sys.executable, *command[1:], "--no-progress"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        output = tmp_path / command[command.index("-o") + 1]
        assert done.stdout.startswith("kbatch dedup: 2,000 rows") and (output / "_kbatch.json").is_file()
        assert len(pd.read_parquet(output / "kept")) < 2_000  # NSMC repeats itself: some reviews are exact copies


def test_texts_the_model_cannot_see_are_only_exact_duplicates(tmp_path, cluster):
    """use-m3 reads 굿, 짱, ㅠㅠ and ㅊㄱ as one unknown piece: one vector for a cheer and a sob.
    Only their exact copies are duplicates."""
    texts = ["굿", "짱", "ㅠㅠ", "ㅊㄱ", "굿", "정말 재미있는 영화였어요", "배우들의 연기가 어색했다"]
    pd.DataFrame({"review_id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_parquet(tmp_path / "short.parquet")
    result = run(cluster, tmp_path / "short.parquet", tmp_path / "dedup", threshold=THRESHOLD)
    groups = pd.read_parquet(tmp_path / "dedup" / "groups.parquet")
    assert groups.groupby("group_id").id.apply(sorted).tolist() == [["r0", "r4"]]
    assert result.manifest["counts"]["unseen_by_model"] == 5
