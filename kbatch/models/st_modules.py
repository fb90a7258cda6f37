"""sentence-transformers' module classes, from wherever this version keeps them.

6.2 moved them to ``sentence_transformers.base.modules`` and
``sentence_transformers.sentence_transformer.modules``; 6.0 (on the GPU machines) has
them in ``sentence_transformers.models``. Importing this imports sentence-transformers.
"""

try:
    from sentence_transformers.base.modules import InputModule, Module
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
except ImportError:  # sentence-transformers < 6.2
    from sentence_transformers.models import InputModule, Module, Normalize, Pooling

__all__ = ["InputModule", "Module", "Normalize", "Pooling"]
