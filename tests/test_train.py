"""Fine-tuning on KorSTS: the data read as KorSTS is written, a short real training run that
helps, and a model every other command can use."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kbatch.commands.embed import embed
from kbatch.commands.train import TrainSettings, train
from kbatch.errors import InputError
from kbatch.io.pairs import read_pairs

KORSTS_DEV = Path(__file__).resolve().parents[1] / "examples" / "korsts" / "sts-dev.tsv"


def korsts(rows: slice) -> pd.DataFrame:
    pairs = pd.read_csv(KORSTS_DEV, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    return pairs.iloc[rows]


def test_korsts_tsv_keeps_quotes_casts_scores_and_names_bad_rows(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "genre\tscore\tsentence1\tsentence2\n"
        'news\t5.000\t그가 "정말 좋다고 말했다\t그는 좋다고 했다\n'
        "news\t3.20\t남자가 기타를 친다\t한 남자가 기타를 연주한다\n"
        "news\tx\t점수가\t없다\n"
        "news\t7\t범위\t밖\n"
        "news\t2\t필드가 모자라다\n"
        "news\t1\t\t빈 문장\n",
        encoding="utf-8",
    )
    log = io.StringIO()
    pairs = read_pairs(path, "sts", log)
    assert pairs.frame["sentence1"].tolist() == ['그가 "정말 좋다고 말했다', "남자가 기타를 친다"]
    assert pairs.frame["score"].tolist() == [5.0, 3.2]
    assert pairs.bad_rows == [(4, "score 'x' is not a number"), (5, "score 7.0 is outside 0-5"),
                              (6, "3 fields, the header has 4"), (7, "sentence1 is empty")]
    assert "4 bad row(s) left out (line 4: score 'x' is not a number;" in log.getvalue()
    with pytest.raises(InputError, match="no column 'anchor' for `task` nli"):
        read_pairs(path, "nli")


def test_nli_pairs_from_anchor_columns_or_kornli_labels(tmp_path):
    (tmp_path / "pairs.tsv").write_text("anchor\tpositive\n배송이 빠르다\t빨리 왔다\n", encoding="utf-8")
    assert read_pairs(tmp_path / "pairs.tsv", "nli").frame.columns.tolist() == ["anchor", "positive"]
    (tmp_path / "kornli.tsv").write_text(
        "sentence1\tsentence2\tgold_label\n"
        "남자가 달린다\t사람이 움직인다\tentailment\n"
        "남자가 달린다\t남자가 잔다\tcontradiction\n"
        "여자가 웃는다\t여자가 행복하다\tneutral\n",
        encoding="utf-8",
    )
    nli = read_pairs(tmp_path / "kornli.tsv", "nli").frame
    assert nli.to_dict("records") == [{"anchor": "남자가 달린다", "positive": "사람이 움직인다", "negative": "남자가 잔다"}]


def test_a_short_training_run_improves_dev_spearman_and_the_model_works_everywhere(tmp_path, reviews, cluster):
    korsts(slice(0, 160)).to_csv(tmp_path / "train.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    korsts(slice(1200, 1400)).to_csv(tmp_path / "dev.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    card = train("sts", tmp_path / "train.tsv", tmp_path / "model", dev=tmp_path / "dev.tsv",
                 settings=TrainSettings(learning_rate=1e-4), progress=False)
    assert card["dev_after"]["spearman"] > card["dev_before"]["spearman"] + 3
    saved = json.loads((tmp_path / "model" / "kbatch_training.json").read_text())
    assert saved["train"]["rows"] == 160 and saved["loss"] == "cosine"
    assert "Trained with kbatch" in (tmp_path / "model" / "README.md").read_text()

    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(tmp_path / "model"), device="cpu").encode(reviews.text.head(8).tolist(), normalize_embeddings=True)
    reviews.head(8).to_parquet(tmp_path / "reviews.parquet")
    result = embed(tmp_path / "reviews.parquet", tmp_path / "emb", model=str(tmp_path / "model"), client=cluster.client, progress=False)
    ours = np.stack(pd.read_parquet(result.output)["embedding"].to_numpy())
    assert np.min(np.sum(ours * plain, axis=1)) > 0.999
    with pytest.raises(InputError, match="exists and is not empty"):
        train("sts", tmp_path / "train.tsv", tmp_path / "model", progress=False)


def test_settings_that_cannot_train_are_refused(tmp_path):
    with pytest.raises(InputError, match="--loss for --task nli must be one of mnrl"):
        train("nli", tmp_path / "x.tsv", tmp_path / "m", settings=TrainSettings(loss="cosine"))
    with pytest.raises(InputError, match="`nli` adds NLI pairs to `task` sts"):
        train("nli", tmp_path / "x.tsv", tmp_path / "m", nli=tmp_path / "y.tsv")
    with pytest.raises(InputError, match=r"training data must be \.tsv or \.csv"):
        train("sts", tmp_path / "x.parquet", tmp_path / "m")
