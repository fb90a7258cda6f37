"""One module per command: each composes stages (:mod:`kbatch.stages`) and runs them in the
command frame (:mod:`kbatch.engine.frame`). The CLI (:mod:`kbatch.cli`) maps flags onto these."""
