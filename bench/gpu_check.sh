#!/usr/bin/env bash
# The GPU check, run as is on the device machine from the repository root, after
# bench/gpu_carry.sh made .whl/ and .carry/ here (name both in the device call's carry):
#   bash bench/gpu_check.sh
# Prints sentences/s of plain SentenceTransformer.encode (fp32, batch 32 and fp16, batch 256)
# and of kbatch embed on a local cluster with one dask-cuda worker per GPU (end to end and
# steady state), the ratios, and the minimum cosine to the plain fp32 vectors: for the
# carried all-MiniLM-L6-v2 (rebuilt from int8, bench/gpu_model.py), then for use-m3 (the default model).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, sentence_transformers, dask, distributed, dask_cuda; print('torch', torch.__version__, '| sentence-transformers', sentence_transformers.__version__, '| dask', dask.__version__, '| dask-cuda', dask_cuda.__version__)"
python3 bench/gpu_model.py unpack .carry/minilm-int8 /tmp/minilm
# Each model's run reports on its own: a failure in the first still lets the second run.
status=0
python3 bench/gpu_embed.py --data .carry/reviews_100k.parquet --model /tmp/minilm "$@" || status=1
python3 bench/gpu_embed.py --data .carry/reviews_100k.parquet --model use-m3 "$@" || status=1  # built here from the carried wheel
exit $status
