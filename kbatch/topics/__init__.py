"""Topics of a corpus (``kbatch topics``): BERTopic-style clustering of document vectors,
c-TF-IDF over Korean morphemes, or a contextualized topic model, at cluster scale."""

from kbatch.topics.pipeline import topics

__all__ = ["topics"]
