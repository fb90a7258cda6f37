"""The USE-m3 network as two sentence-transformers modules around a stock ``Pooling``.

``UseM3Embedding`` turns piece ids into 1280-wide token vectors: the dequantized piece
embedding beside three residual CNN branches over 2-, 3- and 5-gram windows, layer
normalized. A window slot outside its sentence reads zeros, as in the original, so
padding never leaks into a sentence. ``Pooling("mean_sqrt_len_tokens")`` sums them over
√length, and ``UseM3Head`` applies the output projection (moved after the sum, where it
costs one row per sentence instead of one per token) and the feed-forward head.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kbatch.models.batching import pad_batch
from kbatch.models.st_modules import InputModule, Module
from kbatch.use_m3.tokenizer import QUANTIZATION_CHUNKS, SENTENCEPIECE_FILE, SentencePieceTokenizer

EMBEDDING_DIM = 512
BRANCH_DIM = 256
# (n-gram order, tokens of left context) of each CNN branch.
ORDERS = ((2, 0), (3, 1), (5, 2))
TOKEN_DIM = EMBEDDING_DIM + len(ORDERS) * BRANCH_DIM


class WindowConv(nn.Module):
    """A convolution over an n-token window as one matrix product and n shifted sums.

    ``x @ weight`` gives every window slot's contribution at once; slot k of the window
    around token t is token ``t - left + k``, so the output adds each slot's block shifted
    by ``k - left``. Rows outside the batch read zeros, like the reference encoder's
    out-of-sentence slots (padded tokens are zero on the way in).
    """

    def __init__(self, order: int, left: int) -> None:
        super().__init__()
        self.order, self.left = order, left
        self.weight = nn.Parameter(torch.zeros(BRANCH_DIM, order * BRANCH_DIM))
        self.bias = nn.Parameter(torch.zeros(BRANCH_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, tokens, channels)."""
        tokens = x.shape[1]
        slots = F.pad(x @ self.weight, (0, 0, self.left, self.order - 1 - self.left))
        out = self.bias.expand_as(x).clone()
        for k in range(self.order):
            out += slots[:, k : k + tokens, k * BRANCH_DIM : (k + 1) * BRANCH_DIM]
        return out


class NgramBranch(nn.Module):
    """Two residual window convolutions over one n-gram order, zeros outside the sentence."""

    def __init__(self, order: int, left: int) -> None:
        super().__init__()
        self.conv1 = WindowConv(order, left)
        self.conv2 = WindowConv(order, left)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: (batch, tokens, channels), zero at padded tokens; ``mask``: (batch, tokens, 1)."""
        h = (F.relu(self.conv1(x)) + x) * mask
        return F.relu(self.conv2(h)) + h


class UseM3Embedding(InputModule):
    """Piece ids → token vectors (``token_embeddings``, 1280 wide) through the n-gram CNN."""

    config_file_name = "use_m3_config.json"
    config_keys: ClassVar[list[str]] = ["max_seq_length", "vocab_size", "layer_norm_eps"]

    def __init__(self, max_seq_length: int = 512, vocab_size: int = 128_010, layer_norm_eps: float = 1e-6,
                 sentencepiece_file: str | None = None) -> None:
        super().__init__()
        self.max_seq_length = max_seq_length
        self.vocab_size = vocab_size
        self.layer_norm_eps = layer_norm_eps
        # 8-bit table quantized in interleaved chunks: row r uses chunk r % chunks' scale and offset.
        self.register_buffer("table", torch.zeros(vocab_size, EMBEDDING_DIM, dtype=torch.uint8))
        self.register_buffer("chunk_scale", torch.ones(QUANTIZATION_CHUNKS))
        self.register_buffer("chunk_offset", torch.zeros(QUANTIZATION_CHUNKS))
        self.project = nn.Linear(EMBEDDING_DIM, len(ORDERS) * BRANCH_DIM)
        self.project_norm = nn.LayerNorm(len(ORDERS) * BRANCH_DIM, eps=layer_norm_eps)
        self.branches = nn.ModuleList(NgramBranch(order, left) for order, left in ORDERS)
        self.token_norm = nn.LayerNorm(TOKEN_DIM, eps=layer_norm_eps)
        self.tokenizer = SentencePieceTokenizer(sentencepiece_file, max_seq_length) if sentencepiece_file else None

    def embed_pieces(self, ids: torch.Tensor) -> torch.Tensor:
        """Dequantized piece vectors, in the dtype of the model's float weights."""
        chunk = ids % QUANTIZATION_CHUNKS
        dtype = self.project.weight.dtype
        rows = self.table[ids].to(dtype)
        return rows * self.chunk_scale[chunk, None].to(dtype) + self.chunk_offset[chunk, None].to(dtype)

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        ids, attention = features["input_ids"], features["attention_mask"]
        pieces = self.embed_pieces(ids)
        mask = attention.to(pieces.dtype).unsqueeze(-1)
        projected = self.project_norm(self.project(pieces)) * mask
        parts = [pieces]
        for branch, x in zip(self.branches, projected.split(BRANCH_DIM, dim=-1), strict=True):
            parts.append(branch(x, mask))
        features["token_embeddings"] = self.token_norm(torch.cat(parts, dim=-1))
        return features

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs) -> dict[str, torch.Tensor]:
        texts = [prompt + text for text in inputs] if prompt else list(inputs)
        ids, _ = self.tokenizer.encode_batch(texts)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(i) for i in ids], out=offsets[1:])
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(offsets[-1]))
        input_ids, attention_mask = pad_batch(flat, offsets, np.arange(len(ids)), self.tokenizer.pad_token_id)
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}

    def get_embedding_dimension(self) -> int:
        return TOKEN_DIM

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        target = Path(output_path) / SENTENCEPIECE_FILE
        if self.tokenizer is not None and Path(self.tokenizer.model_file).resolve() != target.resolve():
            target.write_bytes(Path(self.tokenizer.model_file).read_bytes())

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> UseM3Embedding:
        directory = Path(model_name_or_path) / subfolder
        module = cls(**cls.load_config(str(directory)), sentencepiece_file=str(directory / SENTENCEPIECE_FILE))
        return cls.load_torch_weights(str(directory), model=module)


class UseM3Head(Module):
    """Summed token vectors → the 512-wide sentence vector (projection, feed-forward, tanh)."""

    config_keys: ClassVar[list[str]] = ["in_features", "out_features"]

    def __init__(self, in_features: int = TOKEN_DIM, out_features: int = EMBEDDING_DIM, hidden: int = 320) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.project = nn.Linear(in_features, out_features)
        self.first = nn.Linear(out_features, hidden, bias=False)
        self.second = nn.Linear(hidden, hidden, bias=False)
        self.second_skip = nn.Linear(out_features, hidden, bias=False)
        self.third = nn.Linear(hidden, out_features, bias=False)
        self.output = nn.Linear(out_features, out_features, bias=False)
        self.output_skip = nn.Linear(hidden, out_features, bias=False)

    def forward(self, features: dict[str, torch.Tensor], **kwargs) -> dict[str, torch.Tensor]:
        pooled = features["sentence_embedding"]
        lengths = features["attention_mask"].sum(dim=1, keepdim=True).to(pooled.dtype)
        # sum_t (W x_t + b) / √n  ==  W (sum_t x_t / √n) + √n b
        x = F.linear(pooled, self.project.weight) + lengths.sqrt() * self.project.bias
        y0 = F.relu(self.first(x))
        y1 = F.relu(self.second_skip(x) + self.second(y0))
        y2 = F.relu(self.third(y1))
        features["sentence_embedding"] = torch.tanh(self.output_skip(y1) + self.output(y2))
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> UseM3Head:
        directory = str(Path(model_name_or_path) / subfolder)
        return cls.load_torch_weights(directory, model=cls(**cls.load_config(directory)))
