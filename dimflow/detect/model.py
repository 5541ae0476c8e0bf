"""The callout detector: YOLO11n trained from its yaml, run through onnxruntime on the CPU.

Whole drawings are read in one pass: the sheet's long side is scaled to `imgsz` (1600 px by
default, about 3.8 px/mm on A3 and 5.4 px/mm on A4), which keeps 2.5 mm text about 10 px
tall without the box-merging problems of tiles. The letterbox is rectangular (multiples of
32), so an A-series sheet costs ~1600x1152 px, not a square.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dimflow.devices import thread_budget
from dimflow.records import CLASSES, Box
from dimflow.settings import get_settings

ONNX = "detector.onnx"
WEIGHTS = "detector.pt"
CONFIG = "detector.json"


@dataclass
class DetectorConfig:
    imgsz: int = 1600
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    conf: float = 0.25
    iou: float = 0.5
    # text keeps its size in pixels on bigger sheets: 1600 px over A3's 420 mm, up to max_imgsz
    px_per_mm: float = 1600 / 420
    max_imgsz: int = 4800


def letterbox(gray: np.ndarray, imgsz: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Scale the long side to imgsz, pad to multiples of 32 with paper; returns (img, scale, pad)."""
    h, w = gray.shape[:2]
    s = imgsz / max(h, w)
    nw, nh = round(w * s), round(h * s)
    img = cv2.resize(gray, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    pw, ph = (32 - nw % 32) % 32, (32 - nh % 32) % 32
    left, top = pw // 2, ph // 2
    img = cv2.copyMakeBorder(img, top, ph - top, left, pw - left, cv2.BORDER_CONSTANT, value=114)
    return img, s, (left, top)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (boxes as x0, y0, x1, y1)."""
    order = scores.argsort()[::-1]
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while len(order):
        i = order[0]
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        ov = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][ov < iou]
    return np.array(keep, dtype=int)


class Detector:
    """ONNX YOLO detector: grayscale drawings in, class boxes in input pixels out."""

    def __init__(self, folder: Path, cfg: DetectorConfig, providers: list[str] | None = None) -> None:
        from dimflow.devices import budgets, onnx_providers

        self.folder, self.cfg = folder, cfg
        self.providers = providers or onnx_providers()
        self._sessions: dict[int | None, Any] = {}
        # opened now, so a model that does not load fails here; for the largest thread budget when the
        # cores are shared (the session a stage alone uses), not a default one no stage would use
        self.session = self._session(max(budgets(), default=None))
        self.input = self.session.get_inputs()[0].name

    def _session(self, threads: int | None):
        """The onnxruntime session for a thread budget (`devices.thread_budget`: the service's
        workers divide the cores among the stages running); made once per budget."""
        got = self._sessions.get(threads)
        if got is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            if threads:
                opts.intra_op_num_threads = threads
            if not get_settings().onnx_spinning:  # several workers on few cores: idle threads must yield the core
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            got = self._sessions[threads] = ort.InferenceSession(str(self.folder / ONNX), opts,
                                                                 providers=self.providers)  # fmt: skip
        return got

    @classmethod
    def load(cls, folder: Path) -> Detector:
        return cls(folder, DetectorConfig(**json.loads((folder / CONFIG).read_text())))

    def size_for(self, shape: tuple[int, ...], dpi: float | None) -> int:
        """The long side the network sees: `imgsz`, or more on sheets larger than A3 (when the
        page's dpi says how large), so that 2.5 mm text stays about 10 px tall."""
        if not dpi:
            return self.cfg.imgsz
        long_mm = max(shape[:2]) / dpi * 25.4
        size = max(self.cfg.imgsz, math.ceil(long_mm * self.cfg.px_per_mm / 32) * 32)
        return min(size, max(self.cfg.imgsz, self.cfg.max_imgsz))

    def detect(self, gray: np.ndarray, dpi: float | None = None) -> list[Box]:
        return self.detect_many([gray], [dpi])[0]

    def detect_many(self, grays: list[np.ndarray], dpis: list[float | None] | None = None) -> list[list[Box]]:
        """Several drawings, one onnxruntime call per letterbox shape (a batch flow's pages)."""
        dpis = dpis or [None] * len(grays)
        prepared = [letterbox(g, self.size_for(g.shape, d)) for g, d in zip(grays, dpis, strict=True)]
        results: list[list[Box]] = [[] for _ in grays]
        session = self._session(thread_budget())
        shapes: dict[tuple[int, int], list[int]] = {}
        for i, (img, _, _) in enumerate(prepared):
            shapes.setdefault(img.shape, []).append(i)
        for idx in shapes.values():
            x = np.stack([prepared[i][0] for i in idx])[:, None].astype(np.float32) / 255.0
            out = session.run(None, {self.input: np.repeat(x, 3, axis=1)})[0]
            for i, pred in zip(idx, out, strict=True):
                results[i] = self._boxes(pred, prepared[i][1], prepared[i][2])
        return results

    def _boxes(self, out: np.ndarray, s: float, pad: tuple[int, int]) -> list[Box]:
        """(4 + nc, N) raw predictions (cx, cy, w, h, class scores) -> boxes in input pixels after NMS."""
        left, top = pad
        scores = out[4:].max(axis=0)
        cls = out[4:].argmax(axis=0)
        ok = scores >= self.cfg.conf
        cx, cy, w, h = out[:4, ok]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        sc, cl = scores[ok], cls[ok]
        result = []
        for c in np.unique(cl):
            idx = np.nonzero(cl == c)[0]
            for k in idx[nms(boxes[idx], sc[idx], self.cfg.iou)]:
                x0, y0, x1, y1 = boxes[k]
                result.append(
                    Box(
                        int(c),
                        float((x0 - left) / s),
                        float((y0 - top) / s),
                        float((x1 - left) / s),
                        float((y1 - top) / s),
                        float(sc[k]),
                    )
                )
        return sorted(result, key=lambda b: (b.cls, b.y0, b.x0))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in (ONNX, WEIGHTS):
            src = self.folder / name
            if src.is_file() and src.resolve() != (folder / name).resolve():
                (folder / name).write_bytes(src.read_bytes())
        (folder / CONFIG).write_text(json.dumps(asdict(self.cfg), indent=1) + "\n")
