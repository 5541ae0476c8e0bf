"""Processing on a lent GPU machine: the shipped models run a few generated drawings through
dimflow.stages on the CPU and on CUDA; the dimensions must agree, and the stage times print.

Needs, besides train_detector.sh's wheels, rapidocr-onnxruntime, pyclipper and shapely in .whl/.

Seen on an NVIDIA H200 machine (16 cores, 2026-11-28), 4 drawings, 36 dimensions, identical on
both: CPU 1178 ms a drawing (detect 148, recognize 438, segment 591); reader and segmenter on
CUDA 946 ms (detect 139 on the CPU, its onnxruntime has no CUDA provider; recognize 290, segment
516, most of which is vectorising on the CPU).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from dimflow import champions, stages  # noqa: E402
from dimflow.settings import get_settings  # noqa: E402
from dimflow.synth.generate import generate  # noqa: E402


def main() -> int:
    import torch

    drawings = [np.asarray(generate(303, i).rendered.image) for i in range(4)]
    out = {}
    for device in ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",):
        ms = champions.models_from(get_settings().baseline_dir, device)
        stages.process_page(ms, drawings[0], stages.loose_page(drawings[0]))  # warm-up
        results, times = [], []
        for g in drawings:
            t = time.perf_counter()
            r = stages.process_page(ms, g, stages.loose_page(g))
            times.append({**r.timings_ms, "total": round((time.perf_counter() - t) * 1000, 1)})
            results.append([(d.text, d.kind) for d in r.dimensions])
        mean = {k: round(float(np.mean([t[k] for t in times])), 1) for k in times[0]}
        out[device] = results
        row = {"device": device, "reader_on": str(next(ms.reader.parameters()).device)}
        row |= {"detector_providers": ms.detector.session.get_providers(), "mean_ms": mean}
        print(json.dumps(row), flush=True)
    same = len(out) == 1 or out["cpu"] == out["cuda"]
    print(json.dumps({"dimensions_agree": same, "n": sum(len(r) for r in out["cpu"])}))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
