"""Detector training data straight from the generator, at the detector's working scale.

The DVC splits hold full-resolution drawings with every by-product (crops, strokes, masks);
the detector needs only the sheet at `imgsz` and its YOLO labels. Generating those directly
is how a GPU machine with no copy of the data builds a larger training set than the DVC
split (same seeds, so indices 0..n-1 of a split are the very drawings DVC tracks).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from dimflow.synth.dataset import yolo_lines
from dimflow.synth.generate import generate


def scaled(gray: np.ndarray, imgsz: int) -> np.ndarray:
    """Long side scaled down to imgsz (never up), as the detector sees the sheet."""
    s = imgsz / max(gray.shape)
    return cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else gray


def is_cad(index: int, cad_share: float) -> bool:
    """Whether drawing `index` of a mixed split is CAD-style: `cad_share` of them, spread evenly."""
    return int((index + 1) * cad_share) > int(index * cad_share)


def write_sample(
    out: Path, name: str, seed: int, index: int, imgsz: int, degrade_share: float, cad_share: float = 0.0
) -> int:
    """Generate drawing `index` of `seed` into out/images/name and out/labels/name; returns label
    count. CAD-style drawings (`cad_share` of the indices) add frame, datum and roughness boxes."""
    d = generate(seed, index, degrade_share, cad=is_cad(index, cad_share))
    gray = scaled(np.asarray(d.rendered.image.convert("L")), imgsz)
    cv2.imwrite(str(out / "images" / name / f"{d.drawing_id}.png"), gray)
    lines = yolo_lines(d)
    (out / "labels" / name / f"{d.drawing_id}.txt").write_text("\n".join(lines) + "\n")
    return len(lines)


def build_split(
    out: Path,
    name: str,
    seed: int,
    n: int,
    imgsz: int,
    degrade_share: float = 0.3,
    workers: int = 1,
    cad_share: float = 0.0,
) -> int:
    """Generate drawings 0..n-1 of `seed` as a YOLO split `name` under `out` (`cad_share` of them
    CAD-style); returns the box count."""
    (out / "images" / name).mkdir(parents=True, exist_ok=True)
    (out / "labels" / name).mkdir(parents=True, exist_ok=True)
    args = [(out, name, seed, i, imgsz, degrade_share, cad_share) for i in range(n)]
    if workers <= 1:
        return sum(write_sample(*a) for a in args)
    with ProcessPoolExecutor(workers) as pool:
        return sum(pool.map(write_sample, *zip(*args, strict=True), chunksize=8))
