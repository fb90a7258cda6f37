"""Attacks and mistakes on inputs and outputs: an output holds vectors of exactly its input, never
of an earlier version of it, and never mixes with the files it was read from."""

import json
import os
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch.cli import main
from kbatch.commands.embed import embed
from kbatch.commands.match import match
from kbatch.errors import OutputConflictError
from kbatch.io.writer import OutputDir


def run(source, output, cluster, **options):
    return embed(source, output, client=cluster.client, progress=False, **options)


def write_uncompressed(frame: pd.DataFrame, path) -> None:
    """Plain, uncompressed Parquet: swapping two characters of a text keeps the file's size."""
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100, compression="none",
                   use_dictionary=False)


def swapped(text: str) -> str:
    return text[1] + text[0] + text[2:]


def test_a_same_size_edit_of_the_input_is_computed_again_not_resumed(tmp_path, reviews, cluster):
    source = tmp_path / "reviews.parquet"
    write_uncompressed(reviews, source)
    run(source, tmp_path / "emb", cluster, id_col="review_id")
    stat = source.stat()
    edited = reviews.copy()
    edited.loc[150, "text"] = swapped(edited.loc[150, "text"])
    write_uncompressed(edited, source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert source.stat().st_size == stat.st_size

    log = tmp_path / "log.txt"
    with log.open("w") as handle:
        rerun = run(source, tmp_path / "emb", cluster, id_col="review_id", log=handle)
    fresh = run(source, tmp_path / "fresh", cluster, id_col="review_id")

    assert rerun.manifest["partitions_done"] == 1 and rerun.manifest["partitions_reused"] == 2
    assert "1 of 3 complete partitions were made from input rows that have changed" in log.read_text()
    resumed, expected = pd.read_parquet(tmp_path / "emb"), pd.read_parquet(tmp_path / "fresh")
    assert resumed["embedding"].map(list).tolist() == expected["embedding"].map(list).tolist()
    assert rerun.manifest["input"]["sha256"] == fresh.manifest["input"]["sha256"]


def test_an_unchanged_input_is_still_nothing_to_do(tmp_path, reviews_file, cluster):
    first = run(reviews_file, tmp_path / "emb", cluster)
    again = run(reviews_file, tmp_path / "emb", cluster)
    assert again.summary().startswith("embed: nothing to do")
    assert again.manifest["input"]["sha256"] == first.manifest["input"]["sha256"]


def test_an_input_that_shrank_leaves_none_of_its_old_rows_behind(tmp_path, reviews, cluster):
    source = tmp_path / "reviews.parquet"
    reviews.to_parquet(source, row_group_size=100)
    run(source, tmp_path / "emb", cluster, id_col="review_id")
    reviews.head(200).to_parquet(source, row_group_size=100)

    result = run(source, tmp_path / "emb", cluster, id_col="review_id")

    assert sorted(p.name for p in (tmp_path / "emb").glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    assert pd.read_parquet(tmp_path / "emb")["id"].tolist() == reviews.head(200)["review_id"].tolist()
    assert result.manifest["rows_in"] == 200


def test_a_rerun_that_dies_before_rewriting_changed_rows_leaves_no_manifest_claiming_them(tmp_path, reviews, cluster, monkeypatch):
    source = tmp_path / "reviews.parquet"
    reviews.to_parquet(source, row_group_size=100)
    run(source, tmp_path / "emb", cluster)
    reviews.assign(text=reviews["text"].str.upper()).to_parquet(source, row_group_size=100)
    start_writing = OutputDir.start_writing

    def killed_right_after(self):
        start_writing(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(OutputDir, "start_writing", killed_right_after)
    with pytest.raises(KeyboardInterrupt):
        run(source, tmp_path / "emb", cluster)

    assert not (tmp_path / "emb" / "_kbatch.json").exists()


def test_output_in_the_input_directory_is_refused_and_the_input_untouched(tmp_path, reviews):
    data = tmp_path / "data"
    data.mkdir()
    reviews.to_parquet(data / "part-00000.parquet")
    before = (data / "part-00000.parquet").read_bytes()

    with pytest.raises(OutputConflictError, match="directory of input file"):
        embed(data, data, overwrite=True, progress=False)

    assert sorted(p.name for p in data.iterdir()) == ["part-00000.parquet"]
    assert (data / "part-00000.parquet").read_bytes() == before


def test_output_the_input_pattern_would_read_is_refused(tmp_path, reviews, capsys):
    (tmp_path / "a").mkdir()
    reviews.to_parquet(tmp_path / "a" / "reviews.parquet")

    code = main(["embed", f"{tmp_path}/*/*.parquet", "-o", str(tmp_path / "emb"), "--no-progress"])

    assert code == 4
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "emb").exists()


def test_null_ids_are_counted_as_missing_not_as_repeated(tmp_path, reviews, cluster, capsys):
    frame = reviews.head(20).assign(review_id=[None, None, None, *reviews["review_id"].head(17).tolist()])
    frame.loc[19, "review_id"] = frame.loc[18, "review_id"]
    frame.to_parquet(tmp_path / "in.parquet")

    result = run(tmp_path / "in.parquet", tmp_path / "emb", cluster, id_col="review_id", log=sys.stderr)

    assert result.manifest["null_ids"] == 3 and result.manifest["duplicate_ids"] == 1
    err = capsys.readouterr().err
    assert "3 rows have no id" in err and "1 rows repeat an id" in err


def test_a_match_against_a_catalog_changed_in_place_is_not_nothing_to_do(tmp_path, reviews, cluster):
    left, right = tmp_path / "left.parquet", tmp_path / "right.parquet"
    reviews.head(40).to_parquet(left)
    catalog = reviews.iloc[100:140].reset_index(drop=True)
    write_uncompressed(catalog, right)
    options = {"client": cluster.client, "progress": False, "id_col": "review_id", "top_k": 3}
    match(left, right, tmp_path / "matches", **options)
    write_uncompressed(catalog.assign(text=catalog["text"].map(swapped)), right)

    with pytest.raises(OutputConflictError):
        match(left, right, tmp_path / "matches", **options)
    rematched = match(left, right, tmp_path / "matches", overwrite=True, **options)

    assert rematched.manifest["partitions_done"] == rematched.manifest["partitions_total"]


def test_a_part_made_at_another_precision_is_not_resumed_into_this_one(tmp_path, reviews_file, cluster):
    run(reviews_file, tmp_path / "emb", cluster)  # --precision auto: fp32 on these CPU workers
    part = tmp_path / "emb" / "part-00001.parquet"
    table = pq.read_table(part)
    meta = json.loads(table.schema.metadata[b"kbatch"])
    as_gpu_workers_write = json.dumps({**meta, "precision": "fp16"}).encode()
    pq.write_table(table.replace_schema_metadata({b"kbatch": as_gpu_workers_write}), part)

    log = tmp_path / "log.txt"
    with log.open("w") as handle:
        rerun = run(reviews_file, tmp_path / "emb", cluster, log=handle)

    assert rerun.manifest["partitions_done"] == 1 and "made with other settings" in log.read_text()
    assert json.loads(pq.read_schema(part).metadata[b"kbatch"])["precision"] == "fp32"


def test_rows_moved_down_by_an_earlier_file_that_grew_get_their_new_row_numbers(tmp_path, reviews, cluster):
    data = tmp_path / "data"
    data.mkdir()
    reviews.iloc[:100].to_parquet(data / "a.parquet")
    reviews.iloc[100:200].to_parquet(data / "b.parquet")
    run(data, tmp_path / "emb", cluster)  # no --id-col: a row's id is its number; one partition per file
    reviews.iloc[:101].to_parquet(data / "a.parquet")  # b's partition: the same rows, now rows 101-200

    run(data, tmp_path / "emb", cluster)

    assert pd.read_parquet(tmp_path / "emb")["id"].tolist() == list(range(201))
