"""Topic models over document vectors and Korean morphemes: clustering, c-TF-IDF, CombinedTM,
quality, continuity across runs and pictures; the command that runs them is
:mod:`kbatch.commands.topics`."""
