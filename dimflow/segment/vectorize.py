"""Vectorise a drawing into strokes and build the stroke graph the segmenter classifies.

Strokes are line segments from OpenCV's LSD detector (arcs come out as chains of short
segments). Each stroke gets scale-free geometric features: lengths and thicknesses are
divided by the drawing's typical thin-line width, so 150 and 300 dpi scans look alike.
Edges join strokes whose ends nearly touch (connectivity) and each stroke's nearest
neighbours (proximity).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

CLASSES = ("contour", "dimension", "text", "other")
# segmentation PNG values (synth) -> stroke class index; paper (0) has no class
PIXEL_TO_CLASS = np.array([-1, 0, 1, 2, 3], dtype=np.int64)
N_FEATURES = 22
INK_LEVEL = 170  # darker than this is ink (CAD exports draw dimensions in gray)


@dataclass
class StrokeGraph:
    segments: np.ndarray  # (N, 4) x1, y1, x2, y2 in input pixels
    features: np.ndarray  # (N, N_FEATURES) float32
    edges: np.ndarray  # (2, E) int64, both directions
    labels: np.ndarray | None = None  # (N,) int64 class index, -1 unknown
    line_width: float = 1.0  # the drawing's typical thin-line width, px
    ink_offset: np.ndarray | None = None  # (N,) px along the normal from the segment to its ink

    @property
    def n(self) -> int:
        return len(self.segments)


def detect_segments(gray: np.ndarray) -> np.ndarray:
    """Line segments (N, 4) of the ink, from LSD on the grayscale drawing."""
    lsd = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    lines = lsd.detect(gray)[0]
    if lines is None:
        return np.zeros((0, 4), np.float32)
    return lines.reshape(-1, 4).astype(np.float32)


def _profile_run(
    ink: np.ndarray, x: np.ndarray, y: np.ndarray, nx: np.ndarray, ny: np.ndarray, reach: int
) -> tuple[np.ndarray, np.ndarray]:
    """Across a stroke at (x, y): the ink run nearest to the point along the normal.

    LSD puts segments on the edges of thick lines, half a pixel off the ink, so the run is
    searched within `reach` px on both sides. Returns (run length px, offset to its centre px).
    """
    h, w = ink.shape
    t = np.arange(-reach, reach + 1)
    xi = np.clip(np.rint(x[:, None] + nx[:, None] * t).astype(int), 0, w - 1)
    yi = np.clip(np.rint(y[:, None] + ny[:, None] * t).astype(int), 0, h - 1)
    prof = ink[yi, xi]  # (N, 2R+1)
    n = len(x)
    # nearest ink sample to the centre
    order = np.argsort(np.abs(t), kind="stable")
    hit = prof[:, order]
    has = hit.any(axis=1)
    c = order[hit.argmax(axis=1)]
    left = np.zeros(n, int)
    right = np.zeros(n, int)
    alive_l = has.copy()
    alive_r = has.copy()
    rows = np.arange(n)
    for k in range(1, 2 * reach + 1):
        il, ir = c - k, c + k
        alive_l &= il >= 0
        alive_l[alive_l] &= prof[rows[alive_l], il[alive_l]]
        left += alive_l
        alive_r &= ir <= 2 * reach
        alive_r[alive_r] &= prof[rows[alive_r], ir[alive_r]]
        right += alive_r
    run = np.where(has, left + right + 1, 0).astype(np.float32)
    offset = np.where(has, t[c] + (right - left) / 2.0, 0.0).astype(np.float32)
    return run, offset


def build_graph(gray: np.ndarray, k: int = 8) -> StrokeGraph:
    """Strokes, their features and the graph over them for one grayscale drawing."""
    h, w = gray.shape
    ink = gray < INK_LEVEL
    seg = detect_segments(gray)
    if len(seg) == 0:
        return StrokeGraph(seg, np.zeros((0, N_FEATURES), np.float32), np.zeros((2, 0), np.int64))
    p1, p2 = seg[:, :2], seg[:, 2:]
    d = p2 - p1
    length = np.linalg.norm(d, axis=1) + 1e-6
    ux, uy = d[:, 0] / length, d[:, 1] / length
    nx, ny = -uy, ux
    # LSD puts segments on the edges of thick lines: measure the ink across from both sides
    runs = [_profile_run(ink, m[:, 0], m[:, 1], nx, ny, 12) for m in (p1 + d * f for f in (0.25, 0.5, 0.75))]
    thick = np.median(np.stack([r[0] for r in runs]), axis=0)
    offset = np.median(np.stack([r[1] for r in runs]), axis=0)
    inkish = thick[thick > 0]
    line_width = float(np.percentile(inkish, 30)) if len(inkish) else 1.0
    line_width = max(line_width, 1.0)
    mid = (p1 + p2) / 2
    gray_at = gray[np.clip(mid[:, 1].astype(int), 0, h - 1), np.clip(mid[:, 0].astype(int), 0, w - 1)]

    # ink density around the midpoint, from an integral image (text is dense, lines are not)
    integral = cv2.integral(ink.astype(np.uint8))
    dens = []
    for r_lw in (4, 12):
        r = int(max(2, r_lw * line_width))
        x0 = np.clip(mid[:, 0].astype(int) - r, 0, w)
        x1 = np.clip(mid[:, 0].astype(int) + r, 0, w)
        y0 = np.clip(mid[:, 1].astype(int) - r, 0, h)
        y1 = np.clip(mid[:, 1].astype(int) + r, 0, h)
        area = np.maximum((x1 - x0) * (y1 - y0), 1)
        dens.append((integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]) / area)

    # graph: k nearest midpoints plus touching ends
    tree = cKDTree(mid)
    kk = min(k + 1, len(mid))
    _, nn = tree.query(mid, k=kk)
    nn = nn.reshape(len(mid), kk)
    src = np.repeat(np.arange(len(mid)), kk - 1)
    dst = nn[:, 1:].reshape(-1)
    ends = np.concatenate([p1, p2])
    etree = cKDTree(ends)
    pairs = etree.query_pairs(r=2.5 * line_width, output_type="ndarray")
    n = len(seg)
    touch = np.stack([pairs[:, 0] % n, pairs[:, 1] % n]) if len(pairs) else np.zeros((2, 0), np.int64)
    touch = touch[:, touch[0] != touch[1]]
    edges = np.concatenate([np.stack([src, dst]), touch, touch[::-1]], axis=1)
    edges = np.unique(np.concatenate([edges, edges[::-1]], axis=1), axis=1).astype(np.int64)
    degree_touch = np.bincount(touch.reshape(-1), minlength=n).astype(np.float32)

    # neighbourhood statistics: how many similar (parallel) strokes are near
    dist_nn, _ = tree.query(mid, k=min(2, len(mid)))
    nearest = dist_nn[:, -1] if dist_nn.ndim == 2 else np.zeros(n)
    angle2 = np.arctan2(uy, ux) * 2
    lw = line_width
    feats = np.stack(
        [
            np.log1p(length / lw),
            np.cos(angle2),
            np.sin(angle2),
            np.abs(ux) > 0.995,  # horizontal
            np.abs(uy) > 0.995,  # vertical
            thick / lw,
            np.log1p(thick / lw),
            gray_at / 255.0,
            dens[0],
            dens[1],
            np.log1p(nearest / lw),
            np.log1p(degree_touch),
            mid[:, 0] / w,
            mid[:, 1] / h,
            np.minimum(mid[:, 0], w - mid[:, 0]) / w,  # distance to the sheet edge
            np.minimum(mid[:, 1], h - mid[:, 1]) / h,
            (np.abs(ux) > 0.2) & (np.abs(uy) > 0.2),  # oblique (hatching, leaders)
            np.abs(np.abs(ux) - np.abs(uy)) < 0.1,  # 45°
            np.log1p(length / lw) * (thick / lw),
            (length / lw) < 3,
            (length / lw) > 40,
            np.full(n, np.log(lw)),
        ],
        axis=1,
    ).astype(np.float32)
    return StrokeGraph(seg, feats, edges, None, line_width, offset)


def label_strokes(g: StrokeGraph, pixel_labels: np.ndarray) -> np.ndarray:
    """Class of each stroke: the most common ink class around points along it."""
    h, w = pixel_labels.shape
    seg = g.segments
    d = seg[:, 2:] - seg[:, :2]
    length = np.linalg.norm(d, axis=1) + 1e-6
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / length[:, None]
    off = g.ink_offset if g.ink_offset is not None else np.zeros(g.n, np.float32)
    votes = np.zeros((g.n, len(CLASSES)), np.int32)
    for f in (0.2, 0.35, 0.5, 0.65, 0.8):
        p = seg[:, :2] + d * f + normal * off[:, None]
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                xi = np.clip(np.rint(p[:, 0] + dx).astype(int), 0, w - 1)
                yi = np.clip(np.rint(p[:, 1] + dy).astype(int), 0, h - 1)
                cls = PIXEL_TO_CLASS[np.clip(pixel_labels[yi, xi], 0, 4)]
                ok = cls >= 0
                np.add.at(votes, (np.nonzero(ok)[0], cls[ok]), 1)
    labels = votes.argmax(axis=1).astype(np.int64)
    labels[votes.sum(axis=1) == 0] = -1
    return labels
