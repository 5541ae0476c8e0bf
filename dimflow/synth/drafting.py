"""Drawing dimensions as drafters draw them (ISO 129): extension lines, dimension lines
with filled arrowheads, text above the line (rotated 90° on vertical dimensions),
leaders with a shoulder for Ø/R/threads/chamfers, arcs for angles.

Each method tries a few placements and gives up (returns False) rather than let text
overlap ink or a line cross text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from dimflow.grammar import Callout, Kind, ToleranceStyle, format_callout, format_number, format_signed
from dimflow.synth.scene import (
    Fill,
    Occupancy,
    Point,
    Rect,
    Run,
    Scene,
    Stroke,
    StrokeClass,
    TextBlock,
    circle_points,
    has_glyph,
    layout_lines,
    measure,
    seg_hits_rect,
)

THIN = 0.25
THICK = 0.5


@dataclass(frozen=True)
class DraftStyle:
    """Per-drawing habits: how this drafter (or CAD template) writes callouts."""

    font: str
    text_height: float = 3.5
    decimal_comma: bool = False
    diameter_glyph: str = "Ø"
    times_glyph: str = "x"
    fit_space: bool = True
    arrow_len: float = 3.0
    tol_scale: float = 0.7
    paren_tolerance: bool = False
    dimension_ink: int = 0  # 0 black; CAD exports often draw dimensions in gray


def _num(text: str, style: DraftStyle) -> str:
    return text.replace(".", ",") if style.decimal_comma else text


def callout_lines(c: Callout, style: DraftStyle) -> tuple[list[Run], float, float]:
    """The callout as drawn: main text plus stacked tolerance or limit lines, in mm,
    shifted so that the returned size is the box of the glyphs' ink."""
    runs, _, _ = _callout_runs(c, style)
    x0 = y0 = float("inf")
    x1 = y1 = float("-inf")
    for r in runs:
        w, asc, desc = measure(style.font, r.text, r.height)
        x0, x1 = min(x0, r.x), max(x1, r.x + w)
        y0, y1 = min(y0, r.baseline - asc), max(y1, r.baseline + desc)
    shifted = [Run(r.text, r.x - x0, r.baseline - y0, r.height) for r in runs]
    return shifted, x1 - x0, y1 - y0


def _callout_runs(c: Callout, style: DraftStyle) -> tuple[list[Run], float, float]:
    h, font = style.text_height, style.font
    deg = "°" if c.kind is Kind.ANGULAR else ""
    dia = style.diameter_glyph if has_glyph(font, style.diameter_glyph) else "Ø"
    times = style.times_glyph if has_glyph(font, style.times_glyph) else "x"
    base = format_callout(
        Callout(c.kind, c.nominal, fit=c.fit, pitch=c.pitch, angle=c.angle, chamfer_prefix=c.chamfer_prefix)
    )
    prefix = f"{c.count}{times} " if c.count > 1 else ""
    main = base.replace("Ø", dia)
    if c.kind in (Kind.THREAD, Kind.CHAMFER):
        main = main.replace("x", times)
    if c.fit and c.kind is not Kind.THREAD and not style.fit_space:
        main = main.replace(f" {c.fit}", c.fit)
    main = prefix + _num(main, style)
    if c.tolerance is ToleranceStyle.SYMMETRIC:
        text = main + _num(f"±{format_number(c.upper)}{deg}", style)
        if c.reference:
            text = f"({text})"
        return layout_lines(font, [(text, h)])
    if c.reference:
        main = f"({main})"
    if c.tolerance is ToleranceStyle.LIMITS:
        hi = prefix + _num(format_callout(Callout(c.kind, c.nominal)).replace("Ø", dia), style)
        lo = _num(format_number(c.nominal + c.lower) + deg, style)
        lo_w = measure(font, lo, h)[0]
        hi_w = measure(font, hi, h)[0]
        runs, w, hgt = layout_lines(font, [(hi, h), (lo, h)], gap=0.8)
        runs[1].x = hi_w - lo_w  # right-align the lower limit under the upper
        return runs, w, hgt
    if c.tolerance is ToleranceStyle.DEVIATION:
        th = h * style.tol_scale
        up, low = _num(format_signed(c.upper, deg), style), _num(format_signed(c.lower, deg), style)
        mw = measure(font, main, h)[0]
        tw = max(measure(font, up, th)[0], measure(font, low, th)[0])
        gap = 0.6
        # two small lines, upper over lower, with the main text centred on the stack
        y_up, y_low = th, 2 * th + 0.7
        y_main = (y_low - th + y_up) / 2 + h / 2
        x = mw + gap
        runs = [Run(main, 0.0, y_main, h)]
        if style.paren_tolerance:  # SOLIDWORKS writes "4.00 (+0.10/-0.20)" with tall brackets
            bh = y_low + 0.25 * th
            bw = measure(font, "(", bh)[0]
            runs.append(Run("(", x, y_low + 0.1 * th, bh))
            x += bw
        runs += [Run(up, x, y_up, th), Run(low, x, y_low, th)]
        x += tw
        if style.paren_tolerance:
            runs.append(Run(")", x, y_low + 0.1 * th, bh))
            x += bw
        return runs, x, max(y_low, y_main) + 0.3 * h
    return layout_lines(font, [(main, h)])


def _arrow(tip: Point, direction: float, style: DraftStyle) -> list[Point]:
    """Filled arrowhead whose tip is at `tip`, pointing along `direction` (radians)."""
    ln, hw = style.arrow_len, style.arrow_len / 6.0
    dx, dy = math.cos(direction), math.sin(direction)
    bx, by = tip[0] - dx * ln, tip[1] - dy * ln
    return [tip, (bx - dy * hw, by + dx * hw), (bx + dy * hw, by - dx * hw)]


class Drafter:
    """Adds dimensions to a scene, honouring the layout rules of `Occupancy`."""

    def __init__(self, scene: Scene, occ: Occupancy, style: DraftStyle, rng: np.random.Generator, area: Rect):
        self.scene, self.occ, self.style, self.rng, self.area = scene, occ, style, rng, area

    # -------------------------------------------------------------- primitives

    def line(self, pts: list[Point], cls: StrokeClass, width: float = THIN, pattern=None) -> None:
        self.scene.strokes.append(Stroke(list(pts), width, cls, pattern))
        self.occ.add_stroke(pts, width)

    def text(self, block: TextBlock, margin: float = 0.8) -> bool:
        if not self._inside(block.rect) or not self.occ.rect_free(block.rect, margin):
            return False
        self.scene.texts.append(block)
        self.occ.add_text(block.rect)
        return True

    def _inside(self, r: Rect) -> bool:
        a = self.area
        return r[0] >= a[0] and r[1] >= a[1] and r[2] <= a[2] and r[3] <= a[3]

    def _commit(self, strokes: list[list[Point]], arrows: list[list[Point]], block: TextBlock) -> bool:
        """Place a dimension if its text is free and none of its lines cross text."""
        if not self._inside(block.rect) or not self.occ.rect_free(block.rect):
            return False
        if any(self.occ.crosses_text(s) for s in strokes):
            return False
        r = block.rect
        own = (r[0] - 0.3, r[1] - 0.3, r[2] + 0.3, r[3] + 0.3)
        if any(seg_hits_rect(a, b, own) for s in strokes for a, b in pairwise(s)):
            return False  # a dimension's own lines must not run through its text
        for s in strokes:
            self.line(s, StrokeClass.DIMENSION)
        for a in arrows:
            self.scene.fills.append(Fill(a, StrokeClass.DIMENSION))
            self.occ.add_polygon(a)
        self.scene.texts.append(block)
        self.occ.add_text(block.rect)
        return True

    def _block(self, c: Callout, at: Point, anchor: str, rotation: int = 0) -> TextBlock:
        """A callout's text block placed by an anchor on its (rotated) box.

        anchor: "bc" bottom-centre (text above a horizontal line), "rc" right-centre of the
        rotated box (text left of a vertical line), "lc"/"rc" left/right-middle (leaders),
        "c" centre.
        """
        runs, w, h = callout_lines(c, self.style)
        bw, bh = (w, h) if rotation == 0 else (h, w)
        x, y = at
        ox = {"bc": x - bw / 2, "c": x - bw / 2, "lc": x, "rc": x - bw, "tc": x - bw / 2}[anchor]
        oy = {"bc": y - bh, "c": y - bh / 2, "lc": y - bh / 2, "rc": y - bh / 2, "tc": y}[anchor]
        return TextBlock(runs, self.style.font, (ox, oy), (w, h), rotation, "dimension", c, format_callout(c))

    # -------------------------------------------------------------- dimension types

    def linear(
        self,
        p1: Point,
        p2: Point,
        orient: str,
        side: int,
        c: Callout,
        offsets=(9.0, 15.0, 21.0, 27.0),
        outside: bool = False,
    ) -> bool:
        """A horizontal ('h') or vertical ('v') dimension between two feature points.

        side: -1 puts the dimension line above (h) / left of (v) the feature, +1 below / right.
        """
        gap, over, al = 1.0, 2.0, self.style.arrow_len
        for off in offsets:
            if orient == "h":
                yd = (min(p1[1], p2[1]) - off) if side < 0 else (max(p1[1], p2[1]) + off)
                x1, x2 = sorted((p1[0], p2[0]))
                ext = [[(p[0], p[1] + side * gap), (p[0], yd + side * over)] for p in (p1, p2)]
                block = self._block(c, ((x1 + x2) / 2, yd - 0.8), "bc")
                w = block.rect[2] - block.rect[0]
                if w + 2 * al + 2 < x2 - x1 and not outside:
                    dim = [[(x1, yd), (x2, yd)]]
                    arrows = [_arrow((x1, yd), math.pi, self.style), _arrow((x2, yd), 0.0, self.style)]
                else:  # text outside on the right, arrows from outside
                    block = self._block(c, (x2 + al + 2 + w / 2, yd - 0.8), "bc")
                    dim = [[(x1 - 2 * al, yd), (x2 + al + 3 + w, yd)]]
                    arrows = [_arrow((x1, yd), 0.0, self.style), _arrow((x2, yd), math.pi, self.style)]
            else:
                xd = (min(p1[0], p2[0]) - off) if side < 0 else (max(p1[0], p2[0]) + off)
                y1, y2 = sorted((p1[1], p2[1]))
                ext = [[(p[0] + side * gap, p[1]), (xd + side * over, p[1])] for p in (p1, p2)]
                block = self._block(c, (xd - 0.8, (y1 + y2) / 2), "rc", rotation=90)
                hgt = block.rect[3] - block.rect[1]
                if hgt + 2 * al + 2 < y2 - y1 and not outside:
                    dim = [[(xd, y1), (xd, y2)]]
                    arrows = [_arrow((xd, y1), -math.pi / 2, self.style), _arrow((xd, y2), math.pi / 2, self.style)]
                else:  # text above the top end
                    block = self._block(c, (xd - 0.8, y1 - al - 2 - hgt / 2), "rc", rotation=90)
                    dim = [[(xd, y1 - al - 3 - hgt), (xd, y2 + 2 * al)]]
                    arrows = [_arrow((xd, y1), math.pi / 2, self.style), _arrow((xd, y2), -math.pi / 2, self.style)]
            if self._commit(ext + dim, arrows, block):
                return True
        return False

    def leader(self, tip: Point, inward: float, c: Callout, lengths=(8.0, 12.0, 17.0, 23.0)) -> bool:
        """A leader whose arrow touches `tip`, pointing along `inward` (radians), with a
        horizontal shoulder and the text beside it."""
        base = inward + math.pi  # the leader runs away from the feature
        tries = []
        for ln in lengths:
            for turn in (0.0, 0.35, -0.35, 0.7, -0.7):
                tries.append((ln, base + turn))
        for ln, ang in tries:
            ex, ey = tip[0] + math.cos(ang) * ln, tip[1] + math.sin(ang) * ln
            right = math.cos(ang) >= 0
            sh = 4.0
            sx = ex + (sh if right else -sh)
            block = self._block(c, (sx + (1.0 if right else -1.0), ey), "lc" if right else "rc")
            arrow = _arrow(tip, ang + math.pi, self.style)
            if self._commit([[tip, (ex, ey), (sx, ey)]], [arrow], block):
                return True
        return False

    def angular(
        self, vertex: Point, a0: float, a1: float, edges: tuple[float, float], c: Callout, radii=(18.0, 25.0, 32.0)
    ) -> bool:
        """An arc between two directions (degrees, counter-clockwise on paper) from `vertex`;
        `edges` are the drawn lengths along each, extended with thin lines where short."""
        for r in radii:
            arc = circle_points(vertex, r, a0, a1)
            t0 = math.radians(a0)
            t1 = math.radians(a1)
            # tangents on paper (y down): d/da of (cos a, -sin a)
            # on paper (y down) the arc's tangent at angle a is (-sin a, -cos a)
            arrows = [
                _arrow(arc[0], math.atan2(math.cos(t0), math.sin(t0)), self.style),
                _arrow(arc[-1], math.atan2(-math.cos(t1), -math.sin(t1)), self.style),
            ]
            strokes = [arc]
            for t, edge_len in zip((t0, t1), edges, strict=True):
                if r > edge_len:
                    p0 = (vertex[0] + math.cos(t) * (edge_len + 1), vertex[1] - math.sin(t) * (edge_len + 1))
                    p1 = (vertex[0] + math.cos(t) * (r + 2), vertex[1] - math.sin(t) * (r + 2))
                    strokes.append([p0, p1])
            mid = math.radians((a0 + a1) / 2)
            mx, my = vertex[0] + math.cos(mid) * (r + 1.5), vertex[1] - math.sin(mid) * (r + 1.5)
            runs_block = self._block(c, (mx, my), "c")
            w = runs_block.rect[2] - runs_block.rect[0]
            h = runs_block.rect[3] - runs_block.rect[1]
            cx, cy = mx + math.cos(mid) * w / 2, my - math.sin(mid) * h / 2
            block = self._block(c, (cx, cy), "c")
            if self._commit(strokes, arrows, block):
                return True
        return False
