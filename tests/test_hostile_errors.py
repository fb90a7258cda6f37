"""Attacks and mistakes that end a run: whatever fails, and wherever (the client, a worker,
the disk, the user's Ctrl-C), the user sees one line with the path and the exit code of its
class, and the details go to the log file that line names."""

import errno
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kbatch.cli import main
from kbatch.engine.logs import KEEP_LOGS, run_log
from kbatch.errors import InputError, OutputLockedError
from kbatch.io.lock import output_lock
from kbatch.io.reader import plan_input

DASHBOARD = "kbatch: dashboard "


@pytest.fixture
def logs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KBATCH_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path / "logs"


def start(*args, logs: Path) -> subprocess.Popen:
    """``python -m kbatch ARGS`` in a session of its own, as a terminal runs it (Ctrl-C goes to the whole group)."""
    return subprocess.Popen([sys.executable, "-m", "kbatch", *map(str, args), "--no-progress"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "KBATCH_LOG_DIR": str(logs)})


def kbatch(*args, logs: Path) -> tuple[int, list[str]]:
    process = start(*args, logs=logs)
    _, err = process.communicate(timeout=600)
    return process.returncode, err.splitlines()


def failure(lines: list[str]) -> str:
    """The one line of the failure; the dashboard link, printed before it, is not a failure."""
    rest = [line for line in lines if not line.startswith(DASHBOARD)]
    assert len(rest) == 1, "\n".join(lines)
    return rest[0]


def details(line: str) -> str:
    """The log file a failure line names, which must exist."""
    assert line.endswith(".log)") and "(details: " in line, line
    path = Path(line.rsplit("(details: ", 1)[1][:-1])
    assert path.is_file(), line
    return path.read_text(encoding="utf-8")


def corrupt_page(source: Path, target: Path, row_group: int) -> None:
    """A copy of ``source`` whose footer is intact but whose text page in ``row_group`` is garbled."""
    column = pq.ParquetFile(source).metadata.row_group(row_group).column(1)
    start = column.dictionary_page_offset or column.data_page_offset
    data = bytearray(source.read_bytes())
    data[start:start + 16] = bytes(b ^ 0xFF for b in data[start:start + 16])
    target.write_bytes(bytes(data))


def test_a_corrupt_page_is_refused_before_the_cluster_starts(tmp_path, reviews_file, logs):
    corrupt_page(reviews_file, tmp_path / "corrupt.parquet", row_group=1)
    code, lines = kbatch("embed", tmp_path / "corrupt.parquet", "-o", tmp_path / "emb", logs=logs)
    assert code == InputError.exit_code
    assert len(lines) == 1 and lines[0].startswith(f"kbatch: error: {tmp_path / 'corrupt.parquet'}: rows 100-200 cannot be read")
    assert "Traceback" in details(lines[0])
    assert not (tmp_path / "emb").exists()


def test_an_input_broken_on_a_worker_is_one_line_with_the_exit_code_of_bad_input(tmp_path, reviews, logs):
    source = tmp_path / "reviews.parquet"
    reviews.to_parquet(source, row_group_size=20)  # 15 partitions: most are read after the file breaks
    process = start("embed", source, "-o", tmp_path / "emb", logs=logs)
    assert process.stderr.readline().startswith(DASHBOARD)
    source.write_bytes(source.read_bytes()[:1000])  # truncated after planning
    _, err = process.communicate(timeout=600)
    line = failure(err.splitlines())
    assert process.returncode == InputError.exit_code
    assert line.startswith(f"kbatch: error: {source}: cannot read rows ")
    assert "Compute Failed" in details(line)  # Dask's block went to the log, from the worker


def test_ctrl_c_while_embedding_is_one_line_and_exit_130(tmp_path, reviews_file, logs):
    process = start("embed", reviews_file, "-o", tmp_path / "emb", logs=logs)
    assert process.stderr.readline().startswith(DASHBOARD)  # the workers are up; the work is starting
    os.killpg(process.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C: every process of the run
    _, err = process.communicate(timeout=120)
    line = failure(err.splitlines())
    assert process.returncode == 130
    assert line.startswith("kbatch: interrupted; rerun the same command to resume (details: ")
    assert "KeyboardInterrupt" in details(line)


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A 64 KiB file system (tmpfs): room for a lock file, not for a partition."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_disk_that_fills_during_the_run_is_one_line_naming_the_file(tmp_path, reviews_file, tiny_disk, logs):
    code, lines = kbatch("embed", reviews_file, "-o", tiny_disk / "emb", logs=logs)
    line = failure(lines)
    assert code == 4
    assert line.startswith(f"kbatch: error: cannot write {tiny_disk / 'emb'}/part-") and "No space left on device" in line
    assert not list(tiny_disk.rglob("part-*.parquet"))


def test_a_disk_full_before_the_run_is_one_line_naming_the_file(tmp_path, reviews_file, tiny_disk, logs):
    with (tiny_disk / "filler").open("wb", buffering=0) as filler, pytest.raises(OSError):
        while True:
            filler.write(b"\0" * 4096)
    code, lines = kbatch("embed", reviews_file, "-o", tiny_disk / "emb", logs=logs)
    assert code == 4
    assert len(lines) == 1 and lines[0].startswith(f"kbatch: error: cannot write {tiny_disk / 'emb.lock'}: No space left on device;")
    assert [p.name for p in tiny_disk.iterdir()] == ["filler"]


def test_an_unexpected_error_is_one_line_and_its_traceback_is_in_the_log(tmp_path, reviews_file, logs, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ValueError("first line\nsecond line of a long dump")

    monkeypatch.setattr("kbatch.commands.embed.embed", broken)
    assert main(["embed", str(reviews_file), "-o", str(tmp_path / "emb")]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("kbatch: error: unexpected ValueError: first line (details: ")
    log = details(line)
    assert "Traceback" in log and "second line of a long dump" in log


def test_a_multi_line_message_is_still_one_line(tmp_path, logs, monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise InputError("the input\nis refused")

    monkeypatch.setattr("kbatch.commands.embed.embed", refused)
    assert main(["embed", str(tmp_path / "in.csv"), "-o", str(tmp_path / "emb")]) == InputError.exit_code
    assert capsys.readouterr().err.startswith("kbatch: error: the input is refused (details: ")


def test_old_logs_are_pruned(logs):
    logs.mkdir()
    for n in range(KEEP_LOGS + 20):
        (logs / f"kbatch-20200101-{n:06d}-1-embed.log").write_text("old")
    (logs / "notes.log").write_text("not kbatch's")
    (logs / "20200101-000000-1-cron.log").write_text("another program's, named like kbatch's used to be")
    with run_log("embed") as path:
        path.write_text("new")
    kept = sorted(p.name for p in logs.iterdir())
    assert len(kept) == KEEP_LOGS + 2 and path.name in kept and "notes.log" in kept and "20200101-000000-1-cron.log" in kept
    assert "kbatch-20200101-000000-1-embed.log" not in kept


def test_lone_surrogates_in_jsonl_are_removed_not_a_reason_to_refuse_the_file(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"text": "\\udc00좋아요"}\n{"text": "a\\ud800"}\n{"text": "\\ud83d\\ude00 pair"}\n', encoding="utf-8")
    plan = plan_input(path)
    assert plan.pieces[0].table.column("text").to_pylist() == ["좋아요", "a", "\U0001f600 pair"]


def test_a_broken_jsonl_line_is_named(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"text": "좋아요"}\n\n{"text": "끝이 없다\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"reviews\.jsonl: line 3 is not valid JSON"):
        plan_input(path)


def test_a_korsts_row_with_too_few_fields_is_refused_with_its_line(tmp_path, logs):
    path = tmp_path / "sts.tsv"
    path.write_text("genre\tscore\tsentence1\tsentence2\nnews\t5.0\t문장 하나\t문장 둘\nnews\t2.0\t짝이 없는 문장\n", encoding="utf-8")
    code, lines = kbatch("sts", path, "-o", tmp_path / "sts", logs=logs)
    assert code == InputError.exit_code
    assert len(lines) == 1 and lines[0].startswith(f"kbatch: error: {path}: line 3 has 3 fields, the header has 4 (details: ")


def test_no_lock_file_is_left_by_a_finished_or_a_refused_run(tmp_path):
    output = tmp_path / "emb"
    with output_lock(output):
        with pytest.raises(OutputLockedError, match=r"another kbatch run \(pid \d+ on "), output_lock(output):
            pass
        assert [p.name for p in tmp_path.iterdir()] == ["emb.lock"]
    assert list(tmp_path.iterdir()) == []


def _hold_and_count(output: str, inside: str, seconds: float) -> int:
    """Take the lock as often as possible for ``seconds``; each time, be the only one inside."""
    taken, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with output_lock(output):
                os.close(os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # fails if another holder is inside
                os.unlink(inside)
                taken += 1
        except OutputLockedError:
            pass
    return taken


def test_runs_racing_for_an_output_never_hold_it_together(tmp_path):
    args = (str(tmp_path / "emb"), str(tmp_path / "inside"), 1.5)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        taken = pool.starmap(_hold_and_count, [args] * 4)
    assert sum(taken) > 100
    assert list(tmp_path.iterdir()) == []


def test_a_lock_file_left_by_a_killed_run_is_taken_and_removed(tmp_path):
    (tmp_path / "emb.lock").write_text(json.dumps({"pid": 1, "host": "gone", "since": "yesterday", "x": "y" * 200}))
    with output_lock(tmp_path / "emb"):
        assert json.loads((tmp_path / "emb.lock").read_text())["pid"] == os.getpid()
    assert list(tmp_path.iterdir()) == []


def test_write_errors_without_a_file_name_still_name_one(tmp_path, logs, monkeypatch, capsys):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # as pyarrow and file objects raise it: no file name

    monkeypatch.setattr("kbatch.io.lock._write_holder", full)
    assert main(["embed", str(Path(__file__).parents[1] / "examples" / "reviews.parquet"), "-o", str(tmp_path / "emb")]) == 4
    assert capsys.readouterr().err.startswith(f"kbatch: error: cannot write {tmp_path / 'emb.lock'}: No space left on device;")
    assert list(tmp_path.iterdir()) == [logs]
