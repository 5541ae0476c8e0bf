"""Print CPU inference time per drawing for the champion models (A3 at 200 dpi).

.venv/bin/python bench/models_cpu.py [--split data/synth/test] [--n 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dimflow import registry
from dimflow.lifecycle import get_kind
from dimflow.segment.vectorize import build_graph
from dimflow.synth.generate import generate


def a3_200dpi(n: int) -> list[tuple[np.ndarray, list]]:
    """Synthetic A3 drawings at 200 dpi with their callout boxes (for the reader's crops)."""
    out, i = [], 0
    while len(out) < n:
        d = generate(9001, i)
        i += 1
        if d.sheet == "A3" and d.dpi == 200:
            gray = np.asarray(d.rendered.image)
            boxes = [b for _, _, b in d.callouts()]
            out.append((gray, boxes))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    drawings = a3_200dpi(args.n)
    report = {"drawing": "A3 200 dpi (3307x2339 px)", "threads": torch.get_num_threads(), "n": args.n}

    det = get_kind("detector")
    if registry.version_by_alias(det.name, registry.CHAMPION) is not None:
        folder = registry.load(det.name).path
        onnx_model = det.load(folder)
        onnx_ms = []
        for gray, _ in drawings:
            t0 = time.perf_counter()
            onnx_model.detect(gray)
            onnx_ms.append(time.perf_counter() - t0)
        report["detector_onnx_ms"] = 1000 * float(np.median(onnx_ms))
        from dimflow.detect.yolo_env import offline

        offline()
        from ultralytics import YOLO

        torch_model = YOLO(str(folder / "detector.pt"))
        torch_ms = []
        for gray, _ in drawings:
            rgb = np.repeat(gray[..., None], 3, axis=2)
            t0 = time.perf_counter()
            torch_model.predict(rgb, imgsz=onnx_model.cfg.imgsz, device="cpu", verbose=False)
            torch_ms.append(time.perf_counter() - t0)
        report["detector_pytorch_ms"] = 1000 * float(np.median(torch_ms))

    seg = get_kind("segmenter")
    seg_model = seg.load(registry.load(seg.name).path)
    vec, gnn = [], []
    for gray, _ in drawings:
        t0 = time.perf_counter()
        g = build_graph(gray)
        t1 = time.perf_counter()
        seg_model.predict(g)
        vec.append(t1 - t0)
        gnn.append(time.perf_counter() - t1)
    report["segmenter_vectorise_ms"] = 1000 * float(np.median(vec))
    report["segmenter_gnn_ms"] = 1000 * float(np.median(gnn))

    rd = get_kind("reader")
    reader = rd.load(registry.load(rd.name).path)
    times = []
    for gray, boxes in drawings:
        crops = [gray[int(b[1]) - 4 : int(b[3]) + 5, int(b[0]) - 4 : int(b[2]) + 5] for b in boxes]
        t0 = time.perf_counter()
        reader.read(crops)
        times.append((time.perf_counter() - t0, len(crops)))
    report["reader_ms_per_drawing"] = 1000 * float(np.median([t for t, _ in times]))
    report["reader_callouts_per_drawing"] = float(np.mean([k for _, k in times]))
    for k, v in report.items():
        print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
