#!/usr/bin/env bash
# The detector's long training on a lent GPU machine, as one prepared command.
# There: no internet, Python 3.12 with torch, opencv, numpy, scipy, pandas; the rest travels as
# wheels in .whl/ (see scripts/gpu/README.md). Writes the run under $OUT/detector-run.
# Back here: dimflow train detector --run-dir <files_at>/detector-run
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 MLFLOW_DISABLE_TELEMETRY=true DIMFLOW_DATA_DIR=/tmp/dimflow-data
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 scripts/gpu/train_detector.py --out "${OUT:-out/gpu}" "$@" 2>&1 | tee "${OUT:-/tmp}/train.log"
