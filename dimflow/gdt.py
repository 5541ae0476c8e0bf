"""GD&T and surface texture: what a feature control frame, a datum feature symbol and a roughness
callout say, as the contract's `gdt`, `datums` and `surface_finish` items. None of them is ever a
dimension.

A frame's characteristic is a drawn symbol (CAD exports stroke it; fonts that carry it are rare),
so it is recognised from pixels: the symbol cell's ink against each ISO 1101 / ASME Y14.5 symbol
drawn here from its geometry, by chamfer distance. The other cells are text (the PDF text layer
or OCR): tolerance with its zone sign and modifiers, then the datums in order.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

SIZE = 48
_S = 0.07  # stroke width in units of the symbol's size

# each symbol as strokes in a unit square (y down): ("l", x0, y0, x1, y1), ("c", cx, cy, r),
# ("a", cx, cy, r, start_deg, end_deg), ("p", [(x, y), ...]) closed polygon
SYMBOLS: dict[str, list[tuple]] = {
    "straightness": [("l", 0.05, 0.5, 0.95, 0.5)],
    "flatness": [("p", [(0.3, 0.2), (0.95, 0.2), (0.7, 0.8), (0.05, 0.8)])],
    "circularity": [("c", 0.5, 0.5, 0.42)],
    "cylindricity": [("c", 0.5, 0.5, 0.3), ("l", 0.05, 0.95, 0.45, 0.05), ("l", 0.55, 0.95, 0.95, 0.05)],
    "profile_of_a_line": [("a", 0.5, 0.75, 0.45, 180, 360)],
    "profile_of_a_surface": [("a", 0.5, 0.75, 0.45, 180, 360), ("l", 0.05, 0.75, 0.95, 0.75)],
    "angularity": [("l", 0.05, 0.85, 0.95, 0.85), ("l", 0.05, 0.85, 0.8, 0.15)],
    "perpendicularity": [("l", 0.5, 0.05, 0.5, 0.9), ("l", 0.05, 0.9, 0.95, 0.9)],
    "parallelism": [("l", 0.1, 0.9, 0.5, 0.1), ("l", 0.5, 0.9, 0.9, 0.1)],
    "position": [("c", 0.5, 0.5, 0.32), ("l", 0.5, 0.0, 0.5, 1.0), ("l", 0.0, 0.5, 1.0, 0.5)],
    "concentricity": [("c", 0.5, 0.5, 0.46), ("c", 0.5, 0.5, 0.24)],
    "symmetry": [("l", 0.05, 0.5, 0.95, 0.5), ("l", 0.22, 0.25, 0.78, 0.25), ("l", 0.22, 0.75, 0.78, 0.75)],
    "circular_runout": [("l", 0.2, 0.95, 0.75, 0.1), ("p", [(0.75, 0.1), (0.55, 0.22), (0.72, 0.35)])],
    "total_runout": [("l", 0.05, 0.95, 0.95, 0.95), ("l", 0.1, 0.95, 0.45, 0.15), ("l", 0.5, 0.95, 0.85, 0.15),
                     ("p", [(0.45, 0.15), (0.3, 0.3), (0.47, 0.38)]), ("p", [(0.85, 0.15), (0.7, 0.3), (0.87, 0.38)])],
}  # fmt: skip


def _normalise(mask: np.ndarray) -> np.ndarray | None:
    """The ink cropped to its box, padded to a square (keeping its aspect) and resized."""
    import cv2

    ys, xs = np.nonzero(mask)
    if len(xs) < 4:
        return None
    m = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8)
    side = max(m.shape)
    sq = np.zeros((side, side), np.uint8)
    oy, ox = (side - m.shape[0]) // 2, (side - m.shape[1]) // 2
    sq[oy : oy + m.shape[0], ox : ox + m.shape[1]] = m
    return cv2.resize(sq * 255, (SIZE, SIZE), interpolation=cv2.INTER_AREA) > 64


def _draw(strokes: list[tuple], px: int = 256) -> np.ndarray:
    import cv2

    img = np.zeros((px, px), np.uint8)
    w = max(1, int(_S * px))

    def p(x: float, y: float) -> tuple[int, int]:
        return round(x * (px - 1)), round(y * (px - 1))

    for s in strokes:
        if s[0] == "l":
            cv2.line(img, p(s[1], s[2]), p(s[3], s[4]), 255, w)
        elif s[0] == "c":
            cv2.circle(img, p(s[1], s[2]), int(s[3] * px), 255, w)
        elif s[0] == "a":
            cv2.ellipse(img, p(s[1], s[2]), (int(s[3] * px), int(s[3] * px)), 0, s[4], s[5], 255, w)
        elif s[0] == "p":
            cv2.polylines(img, [np.array([p(x, y) for x, y in s[1]], np.int32)], True, 255, w)
    return img > 0


@lru_cache(maxsize=1)
def _templates() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import cv2

    out = {}
    for name, strokes in SYMBOLS.items():
        m = _normalise(_draw(strokes))
        if m is None:
            raise RuntimeError(f"the {name} symbol draws no ink")
        dt = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
        out[name] = (m, dt)
    return out


def characteristic(mask: np.ndarray) -> tuple[str, float] | None:
    """The GD&T characteristic whose symbol the ink of a frame's first cell is, with a belief in
    0..1 (from how much nearer it is than the runner-up); None for an empty cell."""
    import cv2

    m = _normalise(mask)
    if m is None:
        return None
    dt = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3)
    scores = {}
    for name, (tm, tdt) in _templates().items():
        scores[name] = float(tdt[m].mean() + dt[tm].mean())  # symmetric chamfer distance, in pixels of SIZE
    best, second = sorted(scores, key=scores.get)[:2]
    margin = scores[second] - scores[best]
    return best, round(min(1.0, 0.5 + margin / 4.0), 3)


def cell_symbol(mask: np.ndarray, cell: tuple[float, float, float, float]) -> tuple[str, float] | None:
    """`characteristic` of a frame cell's ink, its walls (3-4 px each side) left out."""
    x0, y0, x1, y1 = (int(v) for v in cell)
    return characteristic(mask[y0 + 4 : y1 - 3, x0 + 4 : x1 - 3])


# ---------------------------------------------------------------- text of the frame's cells

MODIFIERS = ("CZ", "ST", "M", "L", "F", "P", "T", "U", "S", "E")
_NUM = r"\d+(?:[.,]\d+)?|[.,]\d+"
_TOL_RE = re.compile(rf"^(?P<zone>SØ|Ø)?\s*(?P<tol>{_NUM})\s*(?P<mods>(?:\s*(?:CZ|ST|[MLFPTUSE]))*)\s*$")
_DATUM_RE = re.compile(r"^(?P<label>[A-Z]{1,2}(?:-[A-Z]{1,2})?)\s*(?P<mods>(?:\s*[MLS])*)$")


def _canon(text: str) -> str:
    """The diameter sign's look-alikes (⌀ ∅ ø Φ) as Ø, as the dimension grammar maps them."""
    from dimflow.grammar import _CHAR_MAP

    return text.translate(_CHAR_MAP)


def number(text: str) -> float:
    t = text.replace(",", ".")
    return float("0" + t if t.startswith(".") else t)


def tolerance_cell(text: str) -> tuple[str, float, list[str]] | None:
    """`Ø0.14 M` -> ("diameter", 0.14, ["M"]); None when the cell is not a tolerance."""
    m = _TOL_RE.match(" ".join(_canon(text).split()))
    if not m:
        return None
    zone = {"Ø": "diameter", "SØ": "spherical_diameter"}.get(m["zone"] or "", "width")
    mods = re.findall(r"CZ|ST|[MLFPTUSE]", m["mods"] or "")
    return zone, number(m["tol"]), mods


def datum_cell(text: str) -> str | None:
    """`E M` -> "E(M)", `A-B` -> "A-B"; None when the cell is not a datum reference."""
    m = _DATUM_RE.match(" ".join(text.split()))
    if not m:
        return None
    mods = re.findall(r"[MLS]", m["mods"] or "")
    return m["label"] + "".join(f"({x})" for x in mods)


_FINISH_RE = re.compile(rf"^(?P<par>Ra|Rz|Rmax|Rt|N)\s*(?P<val>{_NUM})\s*(?P<unit>µm|um|μm|µin|uin)?$")


def surface_finish(text: str) -> tuple[str, float, str] | None:
    """`Ra 6,5` -> ("Ra", 6.5, "um"); `N7` -> ("N", 7.0, "um"); None when it is not a roughness value."""
    m = _FINISH_RE.match(" ".join(text.split()))
    if not m:
        return None
    unit = "uin" if (m["unit"] or "").endswith("in") else "um"
    return m["par"], number(m["val"]), unit


SYMBOL_TEXT = {
    "straightness": "⏤", "flatness": "⏥", "circularity": "○", "cylindricity": "⌭", "profile_of_a_line": "⌒",
    "profile_of_a_surface": "⌓", "angularity": "∠", "perpendicularity": "⊥", "parallelism": "∥",
    "position": "⌖", "concentricity": "◎", "symmetry": "⌯", "circular_runout": "↗", "total_runout": "⌰",
}  # fmt: skip
