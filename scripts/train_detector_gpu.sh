#!/usr/bin/env bash
# The long detector training, prepared for a GPU machine (the device tool runs it in a copy of
# this tree). Generates the splits if missing, trains with CUDA picked automatically, registers
# the model in the local MLflow store and exports the baseline into models/baseline/detector,
# which is copied back into the repository through $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MLFLOW_DISABLE_TELEMETRY=true
[ -d data/synth/train/images ] || dvc repro
dimflow train detector --epochs "${EPOCHS:-80}" --imgsz "${IMGSZ:-1600}" --batch "${BATCH:-16}" --max-train "${MAX_TRAIN:-400}"
python -c "from pathlib import Path; from dimflow.lifecycle import export_baseline; \
export_baseline('detector', Path('data/synth/test'), 'scripts/train_detector_gpu.sh')"
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT/models/baseline" && cp -r models/baseline/detector "$OUT/models/baseline/"; fi
