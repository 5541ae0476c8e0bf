"""What CAD sheets carry beside dimensions, drawn into a synthetic scene with exact truth: feature
control frames (ISO 1101 symbols stroked, tolerance with its zone sign and circled modifiers,
datum references), datum feature symbols (a boxed letter on a leader ending in a filled triangle)
and surface-texture symbols with their roughness value. None of them is a dimension.

Symbols are drawn from `dimflow.gdt.SYMBOLS` with each point jittered and the stroke width varied,
so the recogniser is not shown its own templates back; the diameter sign in a frame is written or
stroked as the sheet's style says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from dimflow.gdt import SYMBOL_TEXT, SYMBOLS
from dimflow.synth.drafting import THIN, Drafter
from dimflow.synth.scene import Fill, Rect, Run, StrokeClass, TextBlock, circle_points, measure

DATUM_LETTERS = "ABCDEFGH"
# characteristics drafters use, roughly as often as they do; datum-free ones take no datums
FORM = {"flatness", "straightness", "circularity", "cylindricity"}
CHARACTERISTICS = {
    "position": 0.3, "flatness": 0.1, "perpendicularity": 0.12, "parallelism": 0.12, "concentricity": 0.04,
    "circularity": 0.05, "cylindricity": 0.03, "profile_of_a_surface": 0.06, "profile_of_a_line": 0.03,
    "angularity": 0.04, "symmetry": 0.03, "circular_runout": 0.05, "total_runout": 0.03, "straightness": 0.0,
}  # fmt: skip
DIAMETER_ZONE = {"position", "concentricity", "straightness"}


@dataclass
class Annotations:
    """Truth in sheet millimetres: (contract item fields, rect) per frame, datum and finish."""

    gdt: list[tuple[dict, Rect]] = field(default_factory=list)
    datums: list[tuple[dict, Rect]] = field(default_factory=list)
    finishes: list[tuple[dict, Rect]] = field(default_factory=list)


def _contour_points(d: Drafter) -> list[tuple[float, float]]:
    pts = [p for s in d.scene.strokes if s.cls == StrokeClass.CONTOUR for p in s.points]
    return pts


def _free_spot(d: Drafter, rng: np.random.Generator, w: float, h: float, anchor: tuple[float, float]) -> Rect | None:
    for _ in range(40):
        ang = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(12, 35)
        cx, cy = anchor[0] + dist * math.cos(ang), anchor[1] + dist * math.sin(ang)
        r = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if d._inside(r) and d.occ.rect_free(r, 1.5):
            return r
    return None


def _leader(d: Drafter, rect: Rect, anchor: tuple[float, float], end: str) -> bool:
    """A leader from the rectangle's nearest side to the anchor, ending in an arrow or a triangle."""
    x0, y0, x1, y1 = rect
    sides = [((x0, (y0 + y1) / 2), (-1, 0)), ((x1, (y0 + y1) / 2), (1, 0)), (((x0 + x1) / 2, y1), (0, 1)),
             (((x0 + x1) / 2, y0), (0, -1))]  # fmt: skip
    start, _ = min(sides, key=lambda s: math.dist(s[0], anchor))
    if d.occ.crosses_text([start, anchor], 0.4):
        return False
    d.line([start, anchor], StrokeClass.DIMENSION, THIN)
    dx, dy = anchor[0] - start[0], anchor[1] - start[1]
    n = math.hypot(dx, dy) or 1.0
    ux, uy = dx / n, dy / n
    size = d.style.arrow_len if end == "arrow" else 2.2
    base = (anchor[0] - ux * size, anchor[1] - uy * size)
    half = size * (0.18 if end == "arrow" else 0.55)
    tri = [anchor, (base[0] - uy * half, base[1] + ux * half), (base[0] + uy * half, base[1] - ux * half)]
    d.scene.fills.append(Fill(tri, StrokeClass.DIMENSION))
    d.occ.add_polygon(tri)
    return True


def _symbol(d: Drafter, rng: np.random.Generator, name: str, cell: Rect) -> None:
    x0, y0, x1, y1 = cell
    pad = 0.22 * (y1 - y0)
    size = (y1 - y0) - 2 * pad
    ox, oy = (x0 + x1) / 2 - size / 2, y0 + pad
    width = THIN * float(rng.uniform(0.8, 1.3))

    def at(x: float, y: float) -> tuple[float, float]:
        j = 0.04 * size
        return ox + x * size + rng.uniform(-j, j), oy + y * size + rng.uniform(-j, j)

    for s in SYMBOLS[name]:
        if s[0] == "l":
            d.line([at(s[1], s[2]), at(s[3], s[4])], StrokeClass.DIMENSION, width)
        elif s[0] in ("c", "a"):
            c = at(s[1], s[2])
            r = s[3] * size * float(rng.uniform(0.92, 1.08))
            a0, a1 = (0.0, 360.0) if s[0] == "c" else (360 - s[5], 360 - s[4])  # paper y grows down
            d.line(circle_points(c, r, a0, a1, 0.3), StrokeClass.DIMENSION, width)
        elif s[0] == "p":
            pts = [at(x, y) for x, y in s[1]]
            d.line([*pts, pts[0]], StrokeClass.DIMENSION, width)


def _text_run(d: Drafter, text: str, x: float, mid_y: float, cap: float, role: str) -> float:
    """Text centred on a line at `mid_y`, starting at x; returns its advance."""
    w, asc, desc = measure(d.style.font, text, cap)
    h = max(asc, cap) + max(desc, 0.25 * cap)
    top = mid_y - h / 2
    block = TextBlock([Run(text, 0.0, max(asc, cap), cap)], d.style.font, (x, top), (w, h), 0, role, None, text)
    d.scene.texts.append(block)
    d.occ.add_text(block.rect)
    return w


def _stroked_diameter(d: Drafter, x: float, mid_y: float, cap: float) -> float:
    r = cap * 0.45
    c = (x + r + 0.1 * cap, mid_y)
    d.line(circle_points(c, r, 0, 360, 0.25), StrokeClass.DIMENSION, THIN)
    d.line([(c[0] - r * 1.05, c[1] + r * 1.25), (c[0] + r * 1.05, c[1] - r * 1.25)], StrokeClass.DIMENSION, THIN)
    return 2 * r + 0.35 * cap


def feature_control_frame(
    d: Drafter, rng: np.random.Generator, datums: list[str], stroked_sign: bool
) -> tuple[dict, Rect] | None:
    """One frame placed near the part with a leader to its outline; its truth, or None."""
    pts = _contour_points(d)
    if not pts:
        return None
    names = list(CHARACTERISTICS)
    p = np.array([CHARACTERISTICS[n] for n in names])
    name = str(rng.choice(names, p=p / p.sum()))
    cap = d.style.text_height
    ch = 2.0 * cap
    tol = Decimal(str(rng.choice(["0.01", "0.02", "0.05", "0.1", "0.15", "0.2", "0.3", "0.5", "0.02", "0.05"])))
    zone = "diameter" if name in DIAMETER_ZONE and rng.random() < 0.85 else "width"
    mods = [str(rng.choice(["M", "L"]))] if name == "position" and rng.random() < 0.5 else []
    refs: list[str] = []
    if name not in FORM and datums:
        k = int(rng.integers(1, min(3, len(datums)) + 1))
        refs = [str(x) for x in rng.choice(datums, size=k, replace=False)]
        refs = [r + ("(M)" if name == "position" and rng.random() < 0.2 else "") for r in refs]
    tol_text = f"{tol}".replace(".", ",") if d.style.decimal_comma else f"{tol}"
    sign_w = (cap * 1.25) if zone == "diameter" else 0.0
    tol_w = sign_w + measure(d.style.font, tol_text, cap)[0] + sum(cap * 1.6 for _ in mods) + 1.2 * cap
    datum_ws = [max(ch, measure(d.style.font, r[0], cap)[0] + (1.6 * cap if "(" in r else 0) + cap) for r in refs]
    w = ch + tol_w + sum(datum_ws)
    anchor = pts[int(rng.integers(len(pts)))]
    rect = _free_spot(d, rng, w, ch, anchor)
    if rect is None or not _leader(d, rect, anchor, "arrow"):
        return None
    x0, y0, x1, y1 = rect
    mid = (y0 + y1) / 2
    d.line([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], StrokeClass.DIMENSION, THIN)
    walls = [x0 + ch, x0 + ch + tol_w]
    for dw in datum_ws[:-1]:
        walls.append(walls[-1] + dw)
    for x in walls[: 1 + len(refs)]:
        d.line([(x, y0), (x, y1)], StrokeClass.DIMENSION, THIN)
    _symbol(d, rng, name, (x0, y0, x0 + ch, y1))
    x = x0 + ch + 0.6 * cap
    written = ""
    if zone == "diameter":
        if stroked_sign:
            x += _stroked_diameter(d, x, mid, cap)
        else:
            x += _text_run(d, d.style.diameter_glyph, x, mid, cap, "gdt") + 0.2 * cap
        written = "Ø"
    x += _text_run(d, tol_text, x, mid, cap, "gdt") + 0.5 * cap
    for m in mods:
        mw = _text_run(d, m, x, mid, cap * 0.8, "gdt")
        d.line(circle_points((x + mw / 2, mid), cap * 0.62, 0, 360, 0.25), StrokeClass.DIMENSION, THIN)
        x += cap * 1.6
    for r, left in zip(refs, walls[1:], strict=False):
        xx = left + 0.5 * cap
        xx += _text_run(d, r[0], xx, mid, cap, "gdt")
        if "(" in r:
            mw = _text_run(d, "M", xx + 0.4 * cap, mid, cap * 0.8, "gdt")
            d.line(circle_points((xx + 0.4 * cap + mw / 2, mid), cap * 0.62, 0, 360, 0.25), StrokeClass.DIMENSION,
                   THIN)  # fmt: skip
    text = " ".join([SYMBOL_TEXT[name], f"{written}{tol}" + "".join(f" {m}" for m in mods), *refs])
    item = {"text": text, "characteristic": name, "tolerance": float(tol), "unit": "mm", "zone": zone,
            "modifiers": mods, "datums": refs, "count": 1}  # fmt: skip
    return item, rect


def datum_symbol(d: Drafter, rng: np.random.Generator, letter: str) -> tuple[dict, Rect] | None:
    pts = _contour_points(d)
    if not pts:
        return None
    cap = d.style.text_height
    side = 2.0 * cap
    anchor = pts[int(rng.integers(len(pts)))]
    rect = _free_spot(d, rng, side, side, anchor)
    if rect is None or not _leader(d, rect, anchor, "triangle"):
        return None
    x0, y0, x1, y1 = rect
    d.line([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], StrokeClass.DIMENSION, THIN)
    w = measure(d.style.font, letter, cap)[0]
    _text_run(d, letter, (x0 + x1) / 2 - w / 2, (y0 + y1) / 2, cap, "datum")
    return {"label": letter}, rect


def surface_finish(d: Drafter, rng: np.random.Generator) -> tuple[dict, Rect] | None:
    cap = d.style.text_height
    value = Decimal(str(rng.choice(["0.8", "1.6", "3.2", "6.3", "12.5", "0.4"])))
    param = str(rng.choice(["Ra", "Ra", "Ra", "Rz"]))
    shown = f"{param} {value}".replace(".", ",") if d.style.decimal_comma else f"{param} {value}"
    tw = measure(d.style.font, shown, cap)[0]
    h = 2.2 * cap
    w = 1.3 * h + tw + cap
    for _ in range(40):
        x = rng.uniform(d.area[0], d.area[2] - w)
        y = rng.uniform(d.area[1], d.area[3] - h - cap)
        r = (x, y, x + w, y + h + cap)
        if d._inside(r) and d.occ.rect_free(r, 1.5):
            break
    else:
        return None
    x, y = r[0], r[1] + cap
    vx, vy = x + 0.5 * h, y + h  # the V's point
    d.line([(x, y + 0.45 * h), (vx, vy), (vx + 0.75 * h, y - 0.1 * cap), (x + w, y - 0.1 * cap)],
           StrokeClass.DIMENSION, THIN)  # fmt: skip
    tx = vx + 0.75 * h + 0.4 * cap
    block_w = _text_run(d, shown, tx, y - 0.1 * cap - 0.9 * cap, cap, "finish")
    box = d.scene.texts[-1].rect
    return {"text": f"{param} {value}", "parameter": param, "value": float(value), "unit": "um"}, (
        box[0], box[1], box[0] + block_w, box[3])  # fmt: skip


def annotate(d: Drafter, rng: np.random.Generator, stroked_sign: bool) -> Annotations:
    """Datums first (the frames refer to them), then frames, then roughness symbols."""
    out = Annotations()
    letters = list(DATUM_LETTERS[: int(rng.integers(1, 4))])
    placed = []
    for letter in letters:
        got = datum_symbol(d, rng, letter)
        if got:
            out.datums.append(got)
            placed.append(letter)
    for _ in range(int(rng.integers(1, 5))):
        got = feature_control_frame(d, rng, placed, stroked_sign)
        if got:
            out.gdt.append(got)
    for _ in range(int(rng.integers(0, 3))):
        got = surface_finish(d, rng)
        if got:
            out.finishes.append(got)
    return out
