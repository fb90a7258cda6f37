"""kbatch: Korean text corpora to embeddings, similarity, matches and topics on Dask."""

__version__ = "0.1.0"
