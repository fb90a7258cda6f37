"""Near-duplicate removal at corpus scale, after SemDeDup (Abbas et al. 2023, arXiv 2303.09540).

An exact pass hashes every row's normalized text (:mod:`~kbatch.duplicates.exact`); a semantic
pass clusters the rest with k-means fitted on a sample (:mod:`~kbatch.duplicates.clusters`),
writes every vector to the buckets of its nearest centroids (:mod:`~kbatch.duplicates.buckets`),
compares rows only within a bucket, tile by tile (:mod:`~kbatch.duplicates.pairs`), and joins
the resulting edges into groups (:mod:`~kbatch.duplicates.forest`), each with one representative
(:mod:`~kbatch.duplicates.representatives`). The steps run on the cluster in
:mod:`~kbatch.duplicates.steps`.
"""
