"""Data-lake layouts: nested directories, hive partitions (``dt=.../category=...``) and
directories of thousands of tiny files, locally and on a real S3 server."""

import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch import tokenize
from kbatch.engine.config import ClusterConfig
from kbatch.errors import OutputConflictError
from kbatch.io import storage
from kbatch.io.identity import piece_digest
from kbatch.io.reader import find_input_files, plan_input, read_piece

ONE_WORKER = ClusterConfig(n_workers=1, dashboard_address=":0")
DAYS = {("2026-11-25", "phone"): slice(0, 40), ("2026-11-25", "tv"): slice(40, 70), ("2026-11-26", "phone"): slice(70, 100)}


def write_hive(root, reviews: pd.DataFrame) -> None:
    """reviews in ``root/dt=<day>/category=<name>/part-0.parquet``, the way Spark and pyarrow write them."""
    for (day, category), rows in DAYS.items():
        folder = root / f"dt={day}" / f"category={category}"
        folder.mkdir(parents=True)
        reviews.iloc[rows].to_parquet(folder / "part-0.parquet")


def test_a_directory_is_read_with_its_subdirectories_in_sorted_order(tmp_path, reviews):
    for name in ["b/2.parquet", "a/x/1.parquet", "a/0.parquet", "_tmp/3.parquet", "a/.hidden/4.parquet", "a/_SUCCESS.parquet"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        reviews.head(10).to_parquet(tmp_path / name)

    files = find_input_files(tmp_path)

    assert [f.removeprefix(f"{tmp_path}/") for f in files] == ["a/0.parquet", "a/x/1.parquet", "b/2.parquet"]
    assert plan_input(tmp_path).rows == 30


def test_an_output_inside_the_input_directory_is_refused(tmp_path, reviews):
    (tmp_path / "data").mkdir()
    reviews.head(10).to_parquet(tmp_path / "data" / "a.parquet")
    with pytest.raises(OutputConflictError, match="inside the input directory"):
        tokenize(tmp_path / "data", tmp_path / "data" / "tokens", progress=False)


def test_hive_keys_come_through_as_string_columns_next_to_id(tmp_path, reviews, cluster):
    write_hive(tmp_path / "reviews", reviews)

    result = tokenize(tmp_path / "reviews", tmp_path / "tokens", keep_cols=("dt", "category", "rating"),
                      id_col="review_id", client=cluster.client, progress=False)

    table = pq.read_table(tmp_path / "tokens")
    assert table.column_names[:4] == ["id", "dt", "category", "rating"]
    assert table.schema.field("dt").type == pa.string()
    assert table.schema.field("rating").type == pa.from_numpy_dtype(reviews["rating"].dtype)  # the input's own type
    assert result.manifest["output_schema"]["category"] == "string"
    expected = pd.concat([reviews.iloc[rows].assign(dt=day, category=category) for (day, category), rows in DAYS.items()])
    got = table.select(["id", "dt", "category", "rating"]).to_pandas()
    assert got.values.tolist() == expected[["review_id", "dt", "category", "rating"]].values.tolist()


def test_hive_keys_on_s3(reviews, s3):
    for (day, category), rows in DAYS.items():
        with s3.fs.open(s3.path(f"offers/dt={day}/category={category}/part-0.parquet"), "wb") as handle:
            reviews.iloc[rows].to_parquet(handle)

    tokenize(s3.path("offers"), s3.path("tokens"), keep_cols=("dt", "category"), cluster=ONE_WORKER, progress=False)

    table = storage.read_table(s3.path("tokens"))
    counts = table.to_pandas().groupby(["dt", "category"]).size().to_dict()
    assert counts == {key: rows.stop - rows.start for key, rows in DAYS.items()}
    only_one_day = plan_input(s3.path("offers/dt=2026-11-26"), keep_cols=("dt",))
    assert read_piece(only_one_day.pieces[0], "text", None, keep_cols=("dt",))["dt"].unique().tolist() == ["2026-11-26"]


def test_a_partitions_identity_covers_the_hive_values_it_reads(tmp_path, reviews):
    for day in ["2026-11-25", "2026-11-26"]:
        (tmp_path / day / f"dt={day}").mkdir(parents=True)
        reviews.head(10).to_parquet(tmp_path / day / f"dt={day}" / "part-0.parquet")

    def digest(day: str, keep: tuple[str, ...]) -> str:
        return piece_digest(plan_input(tmp_path / day, keep_cols=keep).pieces[0])

    assert digest("2026-11-25", ()) == digest("2026-11-26", ())  # the same rows, dt not read
    assert digest("2026-11-25", ("dt",)) != digest("2026-11-26", ("dt",))


def write_tiny_files(root, reviews: pd.DataFrame, files: int, rows: int) -> pd.DataFrame:
    """``files`` Parquet files of ``rows`` reviews each (the 300 reviews over and over); returns all rows in order."""
    frame = pd.concat([reviews] * (files * rows // len(reviews) + 1), ignore_index=True).head(files * rows)
    for i in range(files):
        folder = root / f"{i // 100:02d}"  # 20 folders of 100 files
        folder.mkdir(parents=True, exist_ok=True)
        frame.iloc[i * rows:(i + 1) * rows].to_parquet(folder / f"part-{i:04d}.parquet")
    return frame


def test_a_partition_spans_small_files_and_its_identity_follows_their_rows(tmp_path, reviews):
    write_tiny_files(tmp_path / "tiny", reviews, files=30, rows=10)

    plan = plan_input(tmp_path / "tiny", partition_rows=100)

    assert [p.rows for p in plan.pieces] == [100, 100, 100] and len(plan.pieces[1].spans) == 10
    assert read_piece(plan.pieces[1], "text", None)["text"].tolist() == reviews["text"].iloc[100:200].tolist()
    before = [piece_digest(p) for p in plan.pieces]
    edited = pd.read_parquet(tmp_path / "tiny/00/part-0015.parquet").assign(text="바뀐 리뷰")
    edited.to_parquet(tmp_path / "tiny/00/part-0015.parquet")
    after = [piece_digest(p) for p in plan_input(tmp_path / "tiny", partition_rows=100).pieces]
    assert [a == b for a, b in zip(before, after, strict=True)] == [True, False, True]


def test_small_files_travel_in_the_plan_so_no_worker_opens_them_again(tmp_path, reviews):
    frame = write_tiny_files(tmp_path / "tiny", reviews, files=30, rows=10)
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=100)

    tiny, one = plan_input(tmp_path / "tiny", partition_rows=100), plan_input(tmp_path / "one.parquet", partition_rows=100)
    for file in (tmp_path / "tiny").rglob("*.parquet"):
        file.unlink()  # what a worker would read is in the plan already

    table = read_piece(tiny.pieces[1], "text", None)
    assert table["text"].tolist() == frame["text"].iloc[100:200].tolist() and tiny.pieces[1].table.column("text").num_chunks == 1
    assert one.pieces[0].table is None  # a file of a whole partition is read by the worker that runs it
    assert [piece_digest(p) for p in tiny.pieces] == [piece_digest(p) for p in one.pieces]


def test_two_thousand_tiny_files_run_as_a_few_partitions_like_one_file(tmp_path, reviews):
    frame = write_tiny_files(tmp_path / "tiny", reviews, files=2000, rows=10)
    frame.to_parquet(tmp_path / "one.parquet", row_group_size=2000)
    options = {"partition_rows": 2000, "cluster": ONE_WORKER, "progress": False}

    planning = time.perf_counter()
    plan = plan_input(tmp_path / "tiny", partition_rows=2000)
    planning = time.perf_counter() - planning
    seconds = {}
    for name in ["one.parquet", "tiny"]:
        started = time.perf_counter()
        result = tokenize(tmp_path / name, tmp_path / f"{name}-tokens", **options)
        seconds[name] = time.perf_counter() - started

    assert len(plan.pieces) <= 10 and result.manifest["partitions_done"] == len(plan.pieces)
    tiny, one = pq.read_table(tmp_path / "tiny-tokens"), pq.read_table(tmp_path / "one.parquet-tokens")
    assert tiny.column("id").to_pylist() == one.column("id").to_pylist() == list(range(20_000))
    assert tiny.column("tokens").to_pylist() == one.column("tokens").to_pylist()
    print(f"\n2,000 files of 10 rows: planned in {planning:.2f} s; tokenize {seconds['tiny']:.1f} s "
          f"vs {seconds['one.parquet']:.1f} s for one file ({seconds['tiny'] / seconds['one.parquet']:.2f}x)")
