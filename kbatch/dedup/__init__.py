"""Near-duplicate removal at corpus scale, after SemDeDup (Abbas et al. 2023, arXiv 2303.09540).

An exact pass hashes every row's normalized text (:mod:`~kbatch.dedup.exact`); a semantic
pass clusters the rest with k-means fitted on a sample (:mod:`~kbatch.dedup.clusters`),
writes every vector to the buckets of its nearest centroids (:mod:`~kbatch.dedup.buckets`),
compares rows only within a bucket, tile by tile (:mod:`~kbatch.dedup.pairs`), and joins
the resulting edges into groups (:mod:`~kbatch.dedup.forest`), each with one representative
(:mod:`~kbatch.dedup.representatives`). The steps run on the cluster in
:mod:`~kbatch.dedup.steps`.
"""
