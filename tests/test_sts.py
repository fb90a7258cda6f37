"""Sentence-pair scores and STS evaluation, checked against sentence-transformers' own evaluator."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kbatch.commands.sts import evaluate, sts

KORSTS_DEV = Path(__file__).resolve().parents[1] / "examples" / "korsts" / "sts-dev.tsv"


def test_evaluate_equals_the_reference_evaluator_on_korsts_dev(cluster, model_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    ours = evaluate(KORSTS_DEV, client=cluster.client, progress=False)
    pairs = pd.read_csv(KORSTS_DEV, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    reference = EmbeddingSimilarityEvaluator(
        pairs["sentence1"].tolist(), pairs["sentence2"].tolist(), pairs["score"].astype(float).tolist(), name="dev"
    )(SentenceTransformer(model_path, device="cpu", trust_remote_code=True))
    assert ours["pairs"] == len(pairs) == 1500
    assert ours["spearman"] / 100 == pytest.approx(reference["dev_spearman_cosine"], abs=1e-4)
    assert ours["pearson"] / 100 == pytest.approx(reference["dev_pearson_cosine"], abs=1e-4)


def test_pairs_keep_quotes_and_empty_sentences_get_no_score(tmp_path, cluster):
    source = tmp_path / "pairs.tsv"
    source.write_text(
        "score\tsentence1\tsentence2\n"
        '5.0\t"좋은" 영화였다\t"좋은" 영화였다\n'
        "0.0\t날씨가 맑다\t주식 시장이 폭락했다\n"
        "2.5\t\t빈 문장\n"
        "4.0\t고양이가 잔다\t고양이 한 마리가 자고 있다\n",
        encoding="utf-8",
    )
    result = sts(source, tmp_path / "sts", gold="score", client=cluster.client, progress=False)
    scores = pd.read_parquet(tmp_path / "sts").sort_values("id")
    assert list(scores.columns) == ["id", "score", "gold_score"]
    assert scores["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert np.isnan(scores["score"].iloc[2]) and scores["gold_score"].iloc[2] == 2.5
    assert scores["score"].iloc[3] > scores["score"].iloc[1]
    assert result.manifest["metrics"]["pairs"] == 3
    assert result.manifest["rows_skipped"] == {"empty_text": 1}
    assert "Spearman" in result.summary()
