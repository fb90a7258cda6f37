"""The command line as a user runs it: exit codes and one-line errors."""

import json
import subprocess
import sys

import pandas as pd
import pytest


def kbatch(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kbatch", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def one_line_error(done):
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_help_teaches_by_example():
    done = kbatch("embed", "--help")
    assert done.returncode == 0
    assert "python -m kbatch embed examples/reviews.parquet" in done.stdout
    assert kbatch("--version").stdout.startswith("kbatch ")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{reviews}", "--text-col", "title"], 3, "no text column 'title'; columns are review_id, text, rating"),
        (["{xlsx}"], 3, "unsupported file type"),
        (["{broken}"], 3, "not a readable Parquet file"),
        (["{reviews}", "--model", "jhgan/ko-sroberta-multitask"], 5, "cannot be loaded"),
        (["{reviews}", "--cluster", "{bad_cluster}"], 6, "unknown key 'workers'"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(tmp_path, reviews_file, args, code, message):
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    (tmp_path / "broken.parquet").write_bytes(reviews_file.read_bytes()[:500])
    (tmp_path / "bad.yaml").write_text("workers: 3\n")
    paths = {"reviews": reviews_file, "xlsx": tmp_path / "data.xlsx", "broken": tmp_path / "broken.parquet",
             "bad_cluster": tmp_path / "bad.yaml"}
    done = kbatch("embed", *[a.format(**paths) for a in args], "-o", tmp_path / "out")
    assert done.returncode == code
    line = one_line_error(done)
    assert line.startswith("kbatch: error:") and message in line


def test_embed_end_to_end_prints_dashboard_and_summary(tmp_path, reviews):
    source = tmp_path / "reviews.csv"
    reviews.head(60).to_csv(source, index=False)
    done = kbatch("embed", source, "-o", tmp_path / "emb", "--id-col", "review_id", "--cluster", "cluster.yaml")
    assert done.returncode == 0, done.stderr
    assert "kbatch: dashboard http" in done.stderr
    assert "kbatch embed: 60 rows (0 skipped; 0 truncated; " in done.stdout
    assert len(pd.read_parquet(tmp_path / "emb")) == 60
    again = kbatch("embed", source, "-o", tmp_path / "emb", "--id-col", "review_id", "--pooling", "max")
    assert again.returncode == 4
    assert "--overwrite" in one_line_error(again)


def test_tokenize_end_to_end_with_user_words(tmp_path, reviews_file):
    words = tmp_path / "words.txt"
    words.write_text("몰입감 NNG\n", encoding="utf-8")  # MeCab alone reads 몰입/감
    done = kbatch("tokenize", reviews_file, "-o", tmp_path / "tokens", "--pos", "nouns", "--user-dict", words, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "kbatch: dashboard http" in done.stderr
    assert done.stdout.startswith("kbatch tokenize: 300 rows (0 skipped; ")
    tokens = pd.read_parquet(tmp_path / "tokens")["tokens"]
    assert any("몰입감" in list(t) for t in tokens)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--pos", "Noun"], 3, "--pos: unknown tag(s) Noun"),
        (["--analyzer", "kkma", "--user-dict", "examples/user_words.txt"], 7, "analyzer 'kkma' cannot take a user dictionary"),
        (["--user-dict", "missing.txt"], 3, "--user-dict missing.txt: no such file"),
    ],
)
def test_tokenize_refuses_bad_options_in_one_line(tmp_path, reviews_file, args, code, message):
    done = kbatch("tokenize", reviews_file, "-o", tmp_path / "tokens", *args)
    assert done.returncode == code
    assert message in one_line_error(done)


def test_inspect_shows_morphemes_subwords_and_unknown_share():
    done = kbatch("inspect", "아버지가방에들어가신다")
    assert done.returncode == 0, done.stderr
    assert "아버지/NNG 가/JKS 방/NNG 에/JKB" in done.stdout
    assert "tokens of at most 512 (fits)" in done.stdout
    report = json.loads(kbatch("inspect", "깎다", "--json").stdout)
    assert report["unknown"] >= 1 and report["unknown_share"] > 0
    assert report["morphemes"][0] == ["깎", "VV"]


def test_sts_names_the_missing_pair_column(tmp_path):
    done = kbatch("sts", "examples/korsts/sts-dev.tsv", "--col2", "sentence_b", "-o", tmp_path / "sts")
    assert done.returncode == 3
    assert "no col2 column 'sentence_b'" in one_line_error(done) and "--col2" in one_line_error(done)


def test_match_end_to_end(tmp_path, reviews):
    reviews.head(40).to_csv(tmp_path / "offers.csv", index=False)
    reviews.iloc[20:80].to_csv(tmp_path / "catalog.csv", index=False)
    done = kbatch("match", tmp_path / "offers.csv", tmp_path / "catalog.csv", "--id-col", "review_id", "--top-k", "3",
                  "-o", tmp_path / "matches", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kbatch match: 40 rows (0 skipped; 120 matches)")
    pairs = pd.read_parquet(tmp_path / "matches")
    assert list(pairs.columns) == ["left_id", "right_id", "score", "rank"] and len(pairs) == 120
