#!/usr/bin/env bash
# Create .venv and install dimflow with its test tools. Idempotent and offline-safe:
# torch/torchvision come from the pinned wheels on the build machines' disk.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: dimflow needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.dimflow-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  # ultralytics asks for opencv-python (GUI build, needs libGL); keep one cv2: the headless build
  if .venv/bin/python -m pip show -q opencv-python >/dev/null 2>&1; then
    ver="$(.venv/bin/python -m pip show opencv-python-headless | awk '/^Version:/{print $2}')"
    .venv/bin/python -m pip uninstall -q -y opencv-python
    .venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "opencv-python-headless==${ver}"
  fi
  echo "$want" > "$stamp"
fi
.venv/bin/python -c "import cv2, torch, dimflow" || { echo "setup: the environment does not import; remove .venv and retry" >&2; exit 1; }
# register the shipped models in the local registry (or DIMFLOW_MLFLOW_TRACKING_URI's) where it has none:
# serving never does this itself, so a registry that is briefly unreachable cannot be re-seeded by accident
.venv/bin/dimflow --quiet models bootstrap
