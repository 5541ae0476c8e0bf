"""Short CUDA check for a lent GPU machine: the segmenter and reader trainers pick CUDA by
themselves and train a few steps there (they hand the model back on the CPU, ready to save).

Seen on an NVIDIA H200 (2026-11-28): both report device "cuda"; segmenter 3 epochs in 4.9 s,
reader 2 epochs in 1.7 s, on 6 generated drawings.

Run there as: python3 scripts/gpu/check_cuda.py (after installing .whl, see train_detector.sh).
Prints one JSON line per check; exits non-zero when any check fails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dimflow.devices import pick_device  # noqa: E402
from dimflow.read import train as rd  # noqa: E402
from dimflow.segment import train as seg  # noqa: E402
from dimflow.synth.dataset import write_dataset  # noqa: E402


def main() -> int:
    import torch

    device = pick_device()
    print(json.dumps({"check": "device", "device": device, "torch": torch.__version__}), flush=True)
    root = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    write_dataset(root / "train", n=6, seed=11)
    write_dataset(root / "val", n=3, seed=12)
    print(json.dumps({"check": "data", "seconds": round(time.perf_counter() - t, 1)}), flush=True)
    ok = True
    t = time.perf_counter()
    model, metrics = seg.train(root, seg.SegmenterParams(epochs=3, max_train=6, max_val=3, workers=4))
    on = str(next(model.parameters()).device)
    print(json.dumps({"check": "segmenter", "metrics_device": metrics["device"], "weights_on": on,
                      "val_accuracy": metrics["val"]["accuracy"], "seconds": round(time.perf_counter() - t, 1)}),
          flush=True)  # fmt: skip
    ok &= metrics["device"] == device and on == "cpu"
    t = time.perf_counter()
    reader, metrics = rd.train(root, rd.ReaderParams(epochs=2, max_train=64, max_val=16, orient_epochs=1))
    on = str(next(reader.parameters()).device)
    crops = [s.raw for s in rd.load_crops(root / "val", 8)]
    read = reader.read(crops)
    print(json.dumps({"check": "reader", "metrics_device": metrics["device"], "weights_on": on,
                      "val_exact_match": metrics["val"]["exact_match"], "reads": len(read),
                      "seconds": round(time.perf_counter() - t, 1)}), flush=True)  # fmt: skip
    ok &= metrics["device"] == device and on == "cpu" and len(read) == len(crops)
    print(json.dumps({"check": "all", "ok": bool(ok)}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
