"""Model prompts (sentence-transformers' ``prompts`` / ``default_prompt_name``): every command that
embeds puts the chosen prompt before each text, and the prompt is part of what the output is."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from kbatch import embed, match
from kbatch.cli import main
from kbatch.commands.inspect import inspect_text
from kbatch.errors import InputError
from kbatch.models.resolve import load_sentence_transformer, resolve_model
from kbatch.vectors.columns import vector_matrix

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def prompted(tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 with e5's prompts, ``query`` by default."""
    folder = Path(shutil.copytree(resolve_model("all-MiniLM-L6-v2").path, tmp_path_factory.mktemp("m") / "minilm-prompts"))
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config.update(prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query")
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    return folder


def vectors(directory) -> np.ndarray:
    return vector_matrix(pq.read_table(directory, columns=["embedding"]).column("embedding").combine_chunks())[0]


def test_embed_puts_the_models_default_prompt_before_every_text_as_sentence_transformers_does(tmp_path, prompted, reviews, cluster):
    texts = reviews.head(40)
    texts.to_parquet(tmp_path / "reviews.parquet")
    options = {"model": str(prompted), "client": cluster.client, "progress": False}

    default = embed(tmp_path / "reviews.parquet", tmp_path / "default", **options)
    passage = embed(tmp_path / "reviews.parquet", tmp_path / "passage", prompt="passage", **options)
    bare = embed(tmp_path / "reviews.parquet", tmp_path / "bare", prompt="none", **options)

    plain = load_sentence_transformer(str(prompted), "cpu")
    for result, name in ((default, "query"), (passage, "passage")):
        expected = plain.encode(texts.text.tolist(), prompt_name=name, normalize_embeddings=True)
        assert np.min(np.sum(vectors(result.output) * expected, axis=1)) > 0.9999
        assert result.manifest["model"]["prompt"] == {"name": name, "text": f"{name}: "}
    assert "prompt" not in bare.manifest["model"] and "prompt" not in bare.manifest["params"]
    assert np.min(np.sum(vectors(bare.output) * plain.encode(texts.text.tolist(), prompt="", normalize_embeddings=True), axis=1)) > 0.9999
    assert len({default.manifest["params_key"], passage.manifest["params_key"], bare.manifest["params_key"]}) == 3


def test_another_prompt_is_neither_resumed_from_nor_served_by_the_cache(tmp_path, prompted, reviews, cluster):
    reviews.head(20).to_parquet(tmp_path / "reviews.parquet")
    options = {"model": str(prompted), "client": cluster.client, "progress": False, "cache": tmp_path / "cache"}
    embed(tmp_path / "reviews.parquet", tmp_path / "emb", **options)

    with pytest.raises(Exception, match=r"`overwrite`"):
        embed(tmp_path / "reviews.parquet", tmp_path / "emb", prompt="passage", **options)
    other = embed(tmp_path / "reviews.parquet", tmp_path / "emb-passage", prompt="passage", **options)
    again = embed(tmp_path / "reviews.parquet", tmp_path / "emb-again", **options)
    assert other.manifest["counts"]["cache_hits"] == 0
    assert again.manifest["counts"]["cache_hits"] == 20


def test_match_may_give_the_catalog_another_prompt(tmp_path, prompted, cluster):
    options = {"text_col": "title", "id_col": "sku", "top_k": 3, "model": str(prompted), "client": cluster.client, "progress": False}
    offers, catalog = EXAMPLES / "offers.parquet", EXAMPLES / "catalog.parquet"

    result = match(offers, catalog, tmp_path / "matches", right_prompt="passage", **options)

    assert result.manifest["sides"]["prompts"] == {"left": {"name": "query", "text": "query: "},
                                                    "right": {"name": "passage", "text": "passage: "}}
    with pytest.raises(InputError, match="vectors made with prompt 'query', not 'passage'"):
        match(tmp_path / "matches" / "_embeddings" / "left", catalog, tmp_path / "again", prompt="passage", **options)
    with pytest.raises(InputError, match="`right_prompt` is for a right table"):
        match(offers, None, tmp_path / "self", right_prompt="passage", **options)


def test_inspect_shows_the_prompt_among_the_tokens_the_model_sees(prompted):
    report = inspect_text("배송 빨라요", model=str(prompted))
    assert (report.prompt_name, report.prompt) == ("query", "query: ")
    bare = inspect_text("배송 빨라요", model=str(prompted), prompt="none")
    assert report.subwords == ["[CLS]", "query", ":", *bare.subwords[1:]]
    assert "prompt      'query: ' (query)" in report.format() and "prompt      none" in bare.format()


def test_an_unknown_prompt_is_one_line_before_any_cluster_starts(tmp_path, prompted, reviews_file, capsys):
    (tmp_path / "cluster.yaml").write_text("workers: 3\n")  # unreadable: a refusal must come before it is read
    for command in (["embed", str(reviews_file), "-o", str(tmp_path / "out")], ["match", str(reviews_file), "-o", str(tmp_path / "m")],
                    ["topics", str(reviews_file), "-o", str(tmp_path / "t")], ["dedup", str(reviews_file), "-o", str(tmp_path / "d")]):
        code = main([*command, "--model", str(prompted), "--prompt", "title", "--cluster", str(tmp_path / "cluster.yaml")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 3 and len(lines) == 1
        assert "'title' is not a prompt of" in lines[0] and "its prompts are passage, query (or none: no prompt)" in lines[0]
    assert not any((tmp_path / name).exists() for name in ("out", "m", "t", "d"))


def test_train_puts_the_prompt_before_every_sentence_and_the_model_keeps_its_prompts(tmp_path, prompted):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    from kbatch.commands.train import TrainSettings, train

    pairs = pd.read_csv(EXAMPLES / "korsts" / "sts-dev.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str)
    pairs.head(16).to_csv(tmp_path / "train.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    pairs.iloc[100:160].to_csv(tmp_path / "dev.tsv", sep="\t", index=False, quoting=csv.QUOTE_NONE)
    dev = pairs.iloc[100:160]

    card = train("sts", tmp_path / "train.tsv", tmp_path / "model", dev=tmp_path / "dev.tsv", base=str(prompted),
                 settings=TrainSettings(batch_size=8), progress=False)

    base = load_sentence_transformer(str(prompted), "cpu")
    check = EmbeddingSimilarityEvaluator(dev.sentence1.tolist(), dev.sentence2.tolist(), (dev.score.astype(float) / 5).tolist())
    with_prompt = check(base)["spearman_cosine"] * 100
    base.default_prompt_name = None
    without = check(base)["spearman_cosine"] * 100
    assert card["prompt"] == {"name": "query", "text": "query: "}
    assert card["dev_before"]["spearman"] == pytest.approx(with_prompt, abs=0.006) and abs(with_prompt - without) > 0.1
    trained = resolve_model(str(tmp_path / "model"))
    assert {"query": "query: ", "passage": "passage: "}.items() <= dict(trained.prompts).items()  # sentence-transformers adds 'document'
    assert trained.default_prompt_name == "query"
    assert "prompt 'query: ' before every sentence" in (tmp_path / "model" / "README.md").read_text()


@pytest.mark.parametrize("config", [
    {"prompts": "query: "},  # not a mapping
    {"prompts": {"query": ["query: "]}},  # a text that is not one
    {"prompts": {"query": "query: "}, "default_prompt_name": "passage"},  # a default it does not have
], ids=["not-a-mapping", "not-a-text", "unknown-default"])
def test_a_model_folder_with_malformed_prompts_is_refused_in_one_line(tmp_path, prompted, config, capsys):
    folder = tmp_path / "model"
    shutil.copytree(prompted, folder, copy_function=os.symlink)
    (folder / "config_sentence_transformers.json").unlink()
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))

    code = main(["inspect", "배송 빨라요", "--model", str(folder)])

    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 5 and len(lines) == 1
    assert "config_sentence_transformers.json" in lines[0] and ("prompt" in lines[0])
