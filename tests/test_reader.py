import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch.errors import InputError
from kbatch.io.reader import plan_input, read_piece


def test_parquet_partitions_follow_row_groups(reviews_file):
    plan = plan_input(reviews_file, id_col="review_id")
    assert [p.rows for p in plan.pieces] == [100, 100, 100]
    first = read_piece(plan.pieces[1], "text", "review_id")
    assert list(first.columns) == ["id", "text"]
    assert first["id"].iloc[0] == pd.read_parquet(reviews_file)["review_id"].iloc[100]


def test_partition_rows_cut_row_groups_and_row_ids_are_global(reviews_file):
    plan = plan_input(reviews_file, partition_rows=40)
    assert [p.rows for p in plan.pieces] == [40, 40, 20] * 3
    last = read_piece(plan.pieces[-1], "text", None)
    assert last["id"].tolist() == list(range(280, 300))


def test_missing_text_column_lists_the_columns(reviews_file):
    with pytest.raises(InputError, match=r"no text column 'title'; columns are review_id, text, rating"):
        plan_input(reviews_file, text_col="title")


def test_wrong_file_type(tmp_path):
    path = tmp_path / "reviews.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(InputError, match=r"unsupported file type '\.xlsx'"):
        plan_input(path)


def test_truncated_parquet_file(tmp_path, reviews_file):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(reviews_file.read_bytes()[:1000])
    with pytest.raises(InputError, match="not a readable Parquet file"):
        plan_input(broken)


def test_empty_csv_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        plan_input(path)


def test_parquet_without_rows(tmp_path):
    path = tmp_path / "none.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), path)
    with pytest.raises(InputError, match="no rows"):
        plan_input(path)


def test_invalid_utf8_in_csv_names_the_line(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_bytes("text\n좋아요\n".encode() + b"\xed\xa0\x80bad\n")
    with pytest.raises(InputError, match="invalid UTF-8 at line 3"):
        plan_input(path)


def test_tsv_keeps_quote_marks(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text('id\ttext\n1\t"인용" 부호가 있는 문장\n2\t보통 문장\n', encoding="utf-8")
    plan = plan_input(path, id_col="id")
    assert read_piece(plan.pieces[0], "text", "id")["text"].tolist() == ['"인용" 부호가 있는 문장', "보통 문장"]


def test_directory_and_glob_read_every_file(tmp_path, reviews):
    reviews.head(10).to_parquet(tmp_path / "a.parquet")
    reviews.tail(5).to_json(tmp_path / "b.jsonl", orient="records", lines=True, force_ascii=False)
    assert plan_input(tmp_path).rows == 15
    assert plan_input(str(tmp_path / "*.parquet")).rows == 10


def test_rows_by_number_whatever_the_partitioning(tmp_path, reviews):
    from kbatch.io.rows import read_rows

    reviews.head(250).to_parquet(tmp_path / "a.parquet", row_group_size=70)
    reviews.iloc[250:300].to_parquet(tmp_path / "b.parquet", row_group_size=30)
    source = (str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"))
    assert read_rows(source, "text", 60, 260).to_pylist() == reviews.text.iloc[60:260].tolist()
    assert read_rows(str(tmp_path / "a.parquet"), "text", 0, 1).to_pylist() == [reviews.text.iloc[0]]
