"""Embedding columns and what is done with them: top-k and ANN search, the embedding cache,
MMR, and last night's matches."""
