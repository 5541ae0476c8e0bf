"""A drawing as vector primitives in sheet millimetres, and the layout bookkeeping.

The generator composes a `Scene` first and rasterises it afterwards, so that every
pixel's class, every text block's string and every callout's fields are known exactly.
`Occupancy` keeps drafting's two layout rules: no text overlaps other ink, and no line
crosses text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache, lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dimflow.grammar import Callout

Point = tuple[float, float]
Rect = tuple[float, float, float, float]


class StrokeClass(IntEnum):
    """Pixel classes for the stroke segmenter (0 is paper)."""

    BACKGROUND = 0
    CONTOUR = 1
    DIMENSION = 2
    TEXT = 3
    OTHER = 4


HIDDEN = (3.0, 1.2)
CENTER = (10.0, 1.5, 1.5, 1.5)


@dataclass
class Stroke:
    points: list[Point]
    width: float
    cls: StrokeClass
    pattern: tuple[float, ...] | None = None


@dataclass
class Fill:
    points: list[Point]
    cls: StrokeClass


@dataclass
class Run:
    """A piece of text in block-local mm: x from the left, baseline y from the top."""

    text: str
    x: float
    baseline: float
    height: float  # cap height in mm


@dataclass
class TextBlock:
    runs: list[Run]
    font: str
    origin: Point  # top-left of the block's (unrotated) box on the sheet
    size: tuple[float, float]  # unrotated width, height in mm
    rotation: int = 0  # 0 or 90 (counter-clockwise, reads bottom to top)
    role: str = "text"  # "dimension", "text" or "title_block"
    callout: Callout | None = None
    string: str = ""  # what a reader should output for this block

    @property
    def rect(self) -> Rect:
        w, h = self.size if self.rotation == 0 else self.size[::-1]
        x, y = self.origin
        return (x, y, x + w, y + h)


@dataclass
class Scene:
    width: float  # sheet width in mm
    height: float
    strokes: list[Stroke] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    texts: list[TextBlock] = field(default_factory=list)
    regions: list[tuple[str, Rect]] = field(default_factory=list)  # e.g. the title block
    dimension_ink: int = 0  # gray level of dimension graphics and callout text


# ---------------------------------------------------------------- fonts


FONT_FILES = {
    "osifont": "osifont.ttf",
    "dejavu": "DejaVuSans.ttf",
    "dejavu-condensed": "DejaVuSansCondensed.ttf",
    "liberation": "LiberationSans-Regular.ttf",
    "adventor": "dimflow-adventor.ttf",  # TeX Gyre Adventor: Century Gothic's look, SOLIDWORKS' default
}


@cache
def font_path(name: str) -> Path:
    ref = resources.files("dimflow.synth").joinpath("fonts", FONT_FILES[name])
    return Path(str(ref))


@cache
def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), px)


_REF_PX = 200


@cache
def cap_ratio(name: str) -> float:
    """Cap height as a share of the em size, so text is sized as drafters size it."""
    box = _font(name, _REF_PX).getbbox("H", anchor="ls")
    return (box[3] - box[1]) / _REF_PX


def font_for(name: str, cap_mm: float, px_per_mm: float) -> ImageFont.FreeTypeFont:
    return _font(name, max(4, round(cap_mm / cap_ratio(name) * px_per_mm)))


@lru_cache(maxsize=4096)
def measure(name: str, text: str, cap_mm: float) -> tuple[float, float, float]:
    """Advance width, ascent above and descent below the baseline, in mm."""
    f = _font(name, _REF_PX)
    scale = cap_mm / cap_ratio(name) / _REF_PX
    _, top, _, bottom = f.getbbox(text, anchor="ls")
    return f.getlength(text) * scale, -top * scale, max(0.0, bottom * scale)


@cache
def has_glyph(name: str, char: str) -> bool:
    f = _font(name, 64)
    missing = bytes(f.getmask("\U000f0000"))
    mask = f.getmask(char)
    return mask.getbbox() is not None and bytes(mask) != missing


def layout_lines(font: str, lines: list[tuple[str, float]], gap: float = 0.5) -> tuple[list[Run], float, float]:
    """Stack lines (text, cap height) left-aligned; return runs, width and height in mm."""
    runs, y, width = [], 0.0, 0.0
    for text, cap in lines:
        w, asc, desc = measure(font, text, cap)
        y += max(asc, cap)
        runs.append(Run(text, 0.0, y, cap))
        y += max(desc, 0.25 * cap) + gap
        width = max(width, w)
    return runs, width, y - gap


# ---------------------------------------------------------------- geometry helpers


def circle_points(c: Point, r: float, a0: float = 0.0, a1: float = 360.0, step_mm: float = 0.6) -> list[Point]:
    """Points on an arc, angles in degrees, counter-clockwise on paper (y grows down)."""
    span = a1 - a0
    n = max(8, int(abs(math.radians(span)) * r / step_mm))
    return [
        (c[0] + r * math.cos(math.radians(a0 + span * i / n)), c[1] - r * math.sin(math.radians(a0 + span * i / n)))
        for i in range(n + 1)
    ]


def dash(points: list[Point], pattern: tuple[float, ...]) -> list[list[Point]]:
    """Split a polyline into its dashes (pattern alternates on/off lengths)."""
    out: list[list[Point]] = []
    idx, left, on = 0, pattern[0], True
    cur: list[Point] = [points[0]]
    for a, b in pairwise(points):
        seg = math.dist(a, b)
        pos = 0.0
        while seg - pos > left:
            pos += left
            t = pos / seg if seg else 0
            p = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)
            if on:
                cur.append(p)
                out.append(cur)
            cur = [p]
            on = not on
            idx = (idx + 1) % len(pattern)
            left = pattern[idx]
        left -= seg - pos
        if on:
            cur.append(b)
        else:
            cur = [b]
    if on and len(cur) > 1:
        out.append(cur)
    return [d for d in out if len(d) > 1]


def seg_hits_rect(a: Point, b: Point, r: Rect) -> bool:
    """Liang-Barsky: does segment ab touch the rectangle?"""
    x0, y0, x1, y1 = r
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q < 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 > t1:
                return False
    return True


def rects_overlap(a: Rect, b: Rect, margin: float = 0.0) -> bool:
    return not (a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1])


class Occupancy:
    """Where ink and text already are, at 4 cells per mm."""

    RES = 4.0

    def __init__(self, width: float, height: float) -> None:
        self.img = Image.new("L", (int(width * self.RES) + 1, int(height * self.RES) + 1), 0)
        self.draw = ImageDraw.Draw(self.img)
        self.text_rects: list[Rect] = []
        self._arr: np.ndarray | None = None

    def add_stroke(self, points: list[Point], width: float = 0.35) -> None:
        self.draw.line(
            [(x * self.RES, y * self.RES) for x, y in points], fill=255, width=max(1, round(width * self.RES))
        )
        self._arr = None

    def add_polygon(self, points: list[Point]) -> None:
        self.draw.polygon([(x * self.RES, y * self.RES) for x, y in points], fill=255)
        self._arr = None

    def add_text(self, rect: Rect) -> None:
        self.text_rects.append(rect)

    def rect_free(self, rect: Rect, margin: float = 0.8) -> bool:
        """No ink and no other text within `margin` mm of the rectangle."""
        if any(rects_overlap(rect, t, margin) for t in self.text_rects):
            return False
        if self._arr is None:
            self._arr = np.asarray(self.img)
        x0, y0, x1, y1 = (int((v + s * margin) * self.RES) for v, s in zip(rect, (-1, -1, 1, 1), strict=True))
        h, w = self._arr.shape
        if x0 < 0 or y0 < 0 or x1 >= w or y1 >= h:
            return False
        return not self._arr[y0:y1, x0:x1].any()

    def crosses_text(self, points: list[Point], margin: float = 0.6) -> bool:
        for a, b in pairwise(points):
            for r in self.text_rects:
                if seg_hits_rect(a, b, (r[0] - margin, r[1] - margin, r[2] + margin, r[3] + margin)):
                    return True
        return False
