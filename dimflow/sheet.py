"""Pixel geometry of a drawing sheet that text alone does not carry: the rectangles drawn around
text (feature control frames, datum feature symbols, boxed basic dimensions, title-block cells)
and the diameter sign a CAD export draws as lines instead of a character.

Plain numpy on the rendered page (gray, white paper): a pixel is ink when darker than `INK`;
SOLIDWORKS draws dimension text mid-gray (~128) and frames black, so the threshold sits well
above both and well below anti-aliased paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ZONE_BAND = (0.09, 0.05)  # the sheet's outer band (share of width, of height) its border zone marks sit in

INK = 200
DRIFT = 4  # px a frame's top or bottom line may drift along its length (a scan's skew)
Box = tuple[float, float, float, float]


def in_zone_band(box: Box, width: float, height: float) -> bool:
    """The box's centre lies in the sheet's outer band, where its zone marks are and no dimension is."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    mx, my = ZONE_BAND[0] * width, ZONE_BAND[1] * height
    return cx < mx or cx > width - mx or cy < my or cy > height - my


def contains(outer: Box, inner: Box, tol: float = 2.0) -> bool:
    """`inner` lies within `outer` in both axes, `tol` px of slack (a wall's width)."""
    return (outer[0] - tol <= inner[0] and outer[1] - tol <= inner[1] and inner[2] <= outer[2] + tol
            and inner[3] <= outer[3] + tol)  # fmt: skip


def ink(gray: np.ndarray) -> np.ndarray:
    return gray < INK


def _hline(mask: np.ndarray, row: int, x0: int, x1: int, cover: float = 0.9) -> bool:
    if not (0 <= row < mask.shape[0]) or x1 <= x0:
        return False
    seg = mask[max(0, row - 1) : row + 2, max(0, x0) : min(mask.shape[1], x1)].any(axis=0)
    return seg.size > 0 and seg.mean() >= cover


def _vline(mask: np.ndarray, col: int, y0: int, y1: int, cover: float = 0.9) -> bool:
    if not (0 <= col < mask.shape[1]) or y1 <= y0:
        return False
    seg = mask[max(0, y0) : min(mask.shape[0], y1), max(0, col - 1) : col + 2].any(axis=1)
    return seg.size > 0 and seg.mean() >= cover


@dataclass(frozen=True)
class Frame:
    """A rectangle drawn around text: its outer box and the x positions of the lines that divide
    it into cells (both ends included), in page pixels."""

    box: Box
    walls: tuple[int, ...]

    @property
    def cells(self) -> list[Box]:
        _x0, y0, _x1, y1 = self.box
        return [(float(a), y0, float(b), y1) for a, b in zip(self.walls, self.walls[1:], strict=False)]


def enclosing_frame(mask: np.ndarray, box: Box, reach: float = 1.2) -> Frame | None:
    """The drawn rectangle around a horizontal run of text, if there is one: a line above and below
    it within `reach` text heights, and lines left and right of it joining them. The frame is then
    followed left and right along its top and bottom lines as far as both run (a feature control
    frame's further cells; a scan's skew may move them `DRIFT` px off their rows), and its inner
    walls are the columns that cross it from top to bottom."""
    x0, y0, x1, y1 = (round(v) for v in box)
    h = max(8, y1 - y0)
    r = int(reach * h)
    # searches start clear of the run's own ink (a letter's bars are lines as long as the letter)
    top = next((y for y in range(y0 - 3, y0 - r, -1) if _hline(mask, y, x0, x1)), None)
    bottom = next((y for y in range(y1 + 3, y1 + r) if _hline(mask, y, x0, x1)), None)
    if top is None or bottom is None or bottom - top > 3 * h:
        return None
    left = next((x for x in range(x0 - 3, x0 - 3 * h, -1) if _vline(mask, x, top + 2, bottom - 1)), None)
    right = next((x for x in range(x1 + 3, x1 + 4 * h) if _vline(mask, x, top + 2, bottom - 1)), None)
    if left is None or right is None:
        return None

    def follow(row: int, x: int) -> int | None:
        """The line's row at column x, from its row at the last column: a scanned sheet's lines
        drift a pixel at a time (a skew), so the search re-centres on the ink it finds."""
        rows = np.flatnonzero(mask[row - 1 : row + 2, x])
        return None if rows.size == 0 else row - 1 + round(float(rows.mean()))

    def along(x: int, step: int) -> int:
        # follow both lines while they continue, at most a few pixels off their rows where found
        inside = x - 2 * step  # just inside the wall: each line's middle there, not its edge the search met
        t, b = follow(top, inside) or top, follow(bottom, inside) or bottom
        while 0 <= x + step < mask.shape[1]:
            nt, nb = follow(t, x + step), follow(b, x + step)
            if nt is None or nb is None or abs(nt - top) > DRIFT or abs(nb - bottom) > DRIFT:
                break
            t, b, x = nt, nb, x + step
        return x

    fx0, fx1 = along(left, -1), along(right, 1)
    walls = [fx0]
    x = fx0 + 6
    while x < fx1 - 2:
        if _vline(mask, x, top + 2, bottom - 1, cover=0.97):
            walls.append(x)
            x += 6  # a wall drawn 2-5 px thick (or doubled) is one wall
        else:
            x += 1
    if fx1 - walls[-1] <= 6:
        walls.pop()
    walls.append(fx1)
    return Frame(box=(float(fx0), float(top), float(fx1), float(bottom)), walls=tuple(walls))


def has_glyph(mask: np.ndarray, region: Box, height: float, open_left: bool = False) -> bool:
    """Whether a region of a horizontal line of text (a slot before a value) holds a drawn
    character about as tall as the text (`height`): a diameter sign a CAD export strokes instead
    of writing. Lines that cross the slot (leaders, extension lines) are not glyphs: the ink must
    sit inside the slot with paper above, below and before it (unless the slot starts at text:
    `open_left`, a sign set tight between a bracket and its value)."""
    import cv2

    x0, y0, x1, y1 = (round(v) for v in region)
    x0, y0 = max(0, x0), max(0, y0)
    sub = mask[y0:y1, x0:x1].astype(np.uint8)
    if sub.size == 0:
        return False
    n, _, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    for i in range(1, n):
        x, y, w, hh, _area = stats[i]
        # the slot's right side adjoins the value, which a tightly set sign may touch
        touches = (x == 0 and not open_left) or y == 0 or y + hh >= sub.shape[0]
        if not touches and 0.6 * height <= hh <= 1.75 * height and 0.5 * height <= w <= 1.4 * height:
            return True
    return False


def upright(gray: np.ndarray, box: Box, angle: int) -> np.ndarray:
    """The page crop under `box` turned so that text at `angle` (CCW degrees, a multiple of 90)
    reads left to right."""
    x0, y0, x1, y1 = (round(v) for v in box)
    crop = gray[max(0, y0) : y1, max(0, x0) : x1]
    return np.ascontiguousarray(np.rot90(crop, k=-(angle // 90) % 4))
