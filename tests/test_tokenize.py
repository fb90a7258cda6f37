"""kbatch tokenize on a real local cluster; the Java analyzers run in spawned workers only."""

import json
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kbatch.analyzers import AnalyzerSpec
from kbatch.analyzers.tags import TAGS
from kbatch.commands.tokenize import tokenize
from kbatch.stages import MorphAnalyze, NormalizeText


def test_reviews_become_morphemes_with_one_tag_set(tmp_path, reviews_file, cluster):
    result = tokenize(reviews_file, tmp_path / "tokens", id_col="review_id", client=cluster.client, progress=False)
    table = pq.read_table(tmp_path / "tokens")
    assert table.schema.field("tokens").type == pa.list_(pa.string())
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.num_rows == 300 == result.manifest["rows_done"]
    frame = table.to_pandas().set_index("id")
    reviews = pd.read_parquet(reviews_file).rename(columns={"review_id": "id"})
    in_process = MorphAnalyze(AnalyzerSpec("mecab"))(NormalizeText()(reviews)).set_index("id")
    assert all(list(a) == list(b) for a, b in zip(frame["tokens"], in_process.loc[frame.index, "tokens"], strict=True))
    assert set().union(*map(set, frame["tags"])) <= TAGS
    assert all(len(tokens) == len(tags) for tokens, tags in zip(frame["tokens"], frame["tags"], strict=True))
    assert result.manifest["counts"]["morphemes"] == sum(map(len, frame["tokens"]))
    assert result.manifest["analyzer"]["name"] == "mecab"


def test_nouns_with_user_words_and_resume(tmp_path, cluster):
    source = tmp_path / "products.parquet"
    titles = ["삼성전자 갤럭시버즈 노이즈캔슬링 이어폰 화이트", "애플 에어팟 프로 노이즈캔슬링 케이스", None]
    pd.DataFrame({"title": titles}).to_parquet(source)
    words = tmp_path / "words.txt"
    words.write_text("노이즈캔슬링 NNG\n갤럭시버즈\n", encoding="utf-8")
    options = {"text_col": "title", "pos": "nouns", "user_dict": words, "client": cluster.client, "progress": False}
    result = tokenize(source, tmp_path / "tokens", **options)
    tokens = pd.read_parquet(tmp_path / "tokens")["tokens"]
    assert list(tokens[0]) == ["삼성전자", "갤럭시버즈", "노이즈캔슬링", "이어폰", "화이트"]
    assert "노이즈캔슬링" in list(tokens[1]) and tokens[2] is None
    assert result.manifest["rows_skipped"] == {"null_text": 1}
    again = tokenize(source, tmp_path / "tokens", **options)
    assert again.summary().startswith("tokenize: nothing to do")


# What each Java analyzer makes of the classic ambiguity, in the unified tags.
JAVA_READINGS = {
    "okt": "아버지/NNG 가방/NNG 에/JX 들어가/VV",
    "komoran": "아버지/NNG 가방/NNP 에/JKB 들어가/VV 시/EP ㄴ다/EC",
    "hannanum": "아버지가방에들어가/NNG 이/VCP 시/EP ㄴ다/EF",
    "kkma": "아버지/NNG 가방/NNG 에/JKB 들어가/VV 시/EP ㄴ다/EF",
}
HOSTILE = [
    "아버지가방에들어가신다", None, "", "   ", "\x00", "😀🎉",
    "iPhone15 Pro 케이스 ケース 手机壳", "가방\x00에들어가", "좋은 영화. " * 4_000,
]


@pytest.mark.parametrize("name", list(JAVA_READINGS))
def test_java_analyzers_survive_hostile_text_in_spawned_workers(name, cluster):
    frame = NormalizeText()(pd.DataFrame({"id": range(len(HOSTILE)), "text": pd.Series(HOSTILE, dtype=object)}))
    stage = MorphAnalyze(AnalyzerSpec(name, jvm_heap_mb=2048))
    start = time.perf_counter()
    out = cluster.client.submit(stage, frame, resources=cluster.routing.cpu, pure=False).result(timeout=240)
    assert time.perf_counter() - start < 240
    reading = " ".join(f"{f}/{t}" for f, t in zip(out["tokens"][0], out["tags"][0], strict=True))
    assert reading == JAVA_READINGS[name]
    assert out["tokens"].isna().tolist() == [False, True, True, True, True, False, False, False, False]
    assert out["analyzer_error"].isna().all()
    assert len(out["tokens"][8]) >= 4_000


def test_okt_runs_the_whole_command_and_the_client_never_starts_java(tmp_path, reviews_file, cluster):
    import jpype

    result = tokenize(reviews_file, tmp_path / "okt", analyzer="okt", pos="NNG,NNP,SL,SN", client=cluster.client, progress=False)
    assert result.manifest["rows_done"] == 300
    tags = pd.read_parquet(tmp_path / "okt")["tags"]
    assert set().union(*map(set, tags)) <= {"NNG", "NNP", "SL", "SN"}
    assert not jpype.isJVMStarted()
    assert any(cluster.client.run(jpype.isJVMStarted).values())
    manifest = json.loads((tmp_path / "okt" / "_kbatch.json").read_text())
    assert manifest["params"]["analyzer"] == "okt"
