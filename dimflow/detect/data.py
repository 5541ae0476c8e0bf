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

from dimflow.synth.dataset import is_cad, yolo_lines
from dimflow.synth.generate import generate


def scaled(gray: np.ndarray, imgsz: int) -> np.ndarray:
    """Long side scaled down to imgsz (never up), as the detector sees the sheet."""
    s = imgsz / max(gray.shape)
    return cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else gray


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


def _labels(path: Path, w: int, h: int) -> list[tuple[int, float, float, float, float]]:
    """YOLO label lines as (class, x0, y0, x1, y1) in pixels."""
    out = []
    for line in path.read_text().split("\n"):
        if line.strip():
            c, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            out.append((int(c), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
    return out


def window_split(src: Path, name: str, out: Path, size: int, per_image: int, seed: int, keep: float = 0.6) -> int:
    """Cut `per_image` windows of `size` px from each drawing of the YOLO split `src`/images/`name`,
    at the scale the detector sees whole drawings, so a CPU trains on a fraction of the pixels with
    nothing rescaled (the network is convolutional: it runs on the whole sheet afterwards). Each
    window is centred on a random box, the rarer classes (frame, datum, roughness, title block)
    first; a box stays if `keep` of it is inside, clipped to the window. Returns the windows written."""
    (out / "images" / name).mkdir(parents=True, exist_ok=True)
    (out / "labels" / name).mkdir(parents=True, exist_ok=True)
    written = 0
    for k, image in enumerate(sorted((src / "images" / name).glob("*.png"))):
        gray = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        h, w = gray.shape
        boxes = _labels(src / "labels" / name / f"{image.stem}.txt", w, h)
        if not boxes:
            continue
        rng = np.random.default_rng([seed, k])
        rare = [b for b in boxes if b[0] >= 2]
        for j in range(per_image):
            pool = rare if rare and j % 2 == 0 else boxes
            _, x0, y0, x1, y1 = pool[int(rng.integers(len(pool)))]
            cx = (x0 + x1) / 2 + rng.uniform(-size / 4, size / 4)
            cy = (y0 + y1) / 2 + rng.uniform(-size / 4, size / 4)
            wx = int(np.clip(cx - size / 2, 0, max(0, w - size)))
            wy = int(np.clip(cy - size / 2, 0, max(0, h - size)))
            crop = np.full((size, size), 255, np.uint8)
            part = gray[wy : wy + size, wx : wx + size]
            crop[: part.shape[0], : part.shape[1]] = part
            lines = []
            for c, bx0, by0, bx1, by1 in boxes:
                ix0, iy0 = max(bx0, wx), max(by0, wy)
                ix1, iy1 = min(bx1, wx + part.shape[1]), min(by1, wy + part.shape[0])
                area = (bx1 - bx0) * (by1 - by0)
                if ix1 <= ix0 or iy1 <= iy0 or area <= 0 or (ix1 - ix0) * (iy1 - iy0) < keep * area:
                    continue
                lines.append(f"{c} {((ix0 + ix1) / 2 - wx) / size:.6f} {((iy0 + iy1) / 2 - wy) / size:.6f} "
                             f"{(ix1 - ix0) / size:.6f} {(iy1 - iy0) / size:.6f}")  # fmt: skip
            stem = f"{image.stem}-w{j}"
            cv2.imwrite(str(out / "images" / name / f"{stem}.png"), crop)
            (out / "labels" / name / f"{stem}.txt").write_text("\n".join(lines) + "\n")
            written += 1
    return written
