"""Parametric parts (plate, shaft, flange, bracket) drawn in 1-3 views and dimensioned.

Feature sizes are real millimetres; the view scale maps them onto the sheet, and each
callout states the real value, so the ground truth is the geometry itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from itertools import pairwise

import numpy as np

from dimflow.grammar import Callout, Kind, ToleranceStyle
from dimflow.synth.drafting import THICK, THIN, Drafter
from dimflow.synth.scene import CENTER, HIDDEN, Point, Rect, Run, StrokeClass, TextBlock, circle_points, measure

SCALES = (Decimal(5), Decimal(2), Decimal(1), Decimal("0.5"), Decimal("0.2"))
HOLE_FITS = ("H7", "H8", "H11", "G7", "JS9", "K7", "N9", "P7", "F8")
SHAFT_FITS = ("g6", "h6", "h7", "f7", "k6", "m6", "js6", "p6", "e8")


# ---------------------------------------------------------------- values and tolerances


def value(rng: np.random.Generator, lo: float, hi: float, step: float = 1.0) -> Decimal:
    """A feature size as a drafter would choose it: on a step, often whole millimetres."""
    v = rng.uniform(lo, hi)
    return Decimal(str(round(round(v / step) * step, 2))).normalize() + Decimal(0)


def _written(rng: np.random.Generator, v: Decimal) -> Decimal:
    """Digits as written: mostly as is, sometimes with a fixed two decimals."""
    if rng.random() < 0.12:
        return v.quantize(Decimal("0.01"))
    if rng.random() < 0.08 and v == v.to_integral_value():
        return v.quantize(Decimal("0.1"))
    return v


def callout(
    rng: np.random.Generator, kind: Kind, nominal: Decimal, count: int = 1, fits=None, tolerances: bool = True, **extra
) -> Callout:
    """A callout with the tolerancing habits seen on real sheets."""
    kw: dict = {"count": count, **extra}
    r = rng.random() if tolerances else 1.0
    if kind is Kind.ANGULAR:
        if r < 0.2:
            t = Decimal(str(rng.choice(["0.5", "1", "0.25", "2"])))
            kw |= {"upper": t, "lower": -t, "tolerance": ToleranceStyle.SYMMETRIC}
        elif r < 0.28:
            kw |= {"upper": Decimal("0.5"), "lower": Decimal(0), "tolerance": ToleranceStyle.DEVIATION}
        return Callout(kind, nominal, **kw)
    nominal = _written(rng, nominal)
    if r < 0.16:  # symmetric
        t = Decimal(str(rng.choice(["0.1", "0.05", "0.2", "0.02", "0.5", "0.01"])))
        kw |= {"upper": t, "lower": -t, "tolerance": ToleranceStyle.SYMMETRIC}
    elif r < 0.30:  # stacked deviations
        up, lo = (
            Decimal(s)
            for s in rng.choice(
                [
                    ("0.2", "-0.1"),
                    ("0.05", "0"),
                    ("0", "-0.1"),
                    ("0.1", "0.05"),
                    ("-0.02", "-0.05"),
                    ("0.018", "0"),
                    ("0", "-0.2"),
                    ("0.10", "-0.20"),
                    ("0.3", "0"),
                ]
            )
        )
        kw |= {"upper": up, "lower": lo, "tolerance": ToleranceStyle.DEVIATION}
    elif r < 0.37:  # limit dimension
        nominal = nominal.quantize(Decimal("0.01"))
        low = nominal - Decimal(str(rng.choice(["0.10", "0.05", "0.50", "0.20", "0.02"])))
        kw |= {"upper": Decimal(0), "lower": low - nominal, "tolerance": ToleranceStyle.LIMITS}
    elif r < 0.52 and fits:  # ISO 286 fit, sometimes with its deviations
        kw["fit"] = str(rng.choice(fits))
        if rng.random() < 0.3:
            kw |= {"upper": Decimal("0.021"), "lower": Decimal(0), "tolerance": ToleranceStyle.DEVIATION}
    elif 0.96 < r < 1.0 and kind is Kind.LINEAR and count == 1:
        kw["reference"] = True
    return Callout(kind, nominal, **kw)


# ---------------------------------------------------------------- geometry helpers


def toward(a: Point, b: Point) -> float:
    """Direction from a to b on paper, in radians."""
    return math.atan2(b[1] - a[1], b[0] - a[0])


def rect_pts(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def centre_cross(d: Drafter, c: Point, r: float) -> None:
    e = r + 2.5
    d.line([(c[0] - e, c[1]), (c[0] + e, c[1])], StrokeClass.OTHER, THIN, CENTER)
    d.line([(c[0], c[1] - e), (c[0], c[1] + e)], StrokeClass.OTHER, THIN, CENTER)


def hatch(d: Drafter, r: Rect, spacing: float, angle: float = 45.0) -> None:
    """Section hatching: thin parallel lines clipped to a rectangle."""
    x0, y0, x1, y1 = r
    t = math.tan(math.radians(angle))
    k = x0 - (y1 - y0) / t
    while k < x1:
        a = (k, y1)
        b = (k + (y1 - y0) / t, y0)
        seg = _clip(a, b, r)
        if seg:
            d.line(list(seg), StrokeClass.OTHER, THIN * 0.8)
        k += spacing / math.sin(math.radians(angle))


def _clip(a: Point, b: Point, r: Rect) -> tuple[Point, Point] | None:
    x0, y0, x1, y1 = r
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
    if t0 >= t1:
        return None
    return (a[0] + dx * t0, a[1] + dy * t0), (a[0] + dx * t1, a[1] + dy * t1)


def view_label(d: Drafter, text: str, at: Point) -> None:
    h = d.style.text_height * 1.2
    w, asc, desc = measure(d.style.font, text, h)
    block = TextBlock(
        [Run(text, 0.0, asc, h)], d.style.font, (at[0] - w / 2, at[1] - asc - desc), (w, asc + desc), string=text
    )
    d.text(block)


def _pick_scale(extent: tuple[float, float], box: tuple[float, float]) -> Decimal:
    for s in SCALES:
        if extent[0] * float(s) <= box[0] and extent[1] * float(s) <= box[1]:
            return s
    return SCALES[-1]


# ---------------------------------------------------------------- parts
# Each part draws its views into `area` and returns its scale and a title.

PartFn = Callable[[Drafter, np.random.Generator, Rect], tuple[Decimal, str]]


def plate(d: Drafter, rng: np.random.Generator, area: Rect) -> tuple[Decimal, str]:
    W, H = value(rng, 50, 200, 5), value(rng, 35, 140, 5)
    T = value(rng, 4, 20)
    aw, ah = area[2] - area[0], area[3] - area[1]
    s = _pick_scale((float(W + T) + 60 / 1, float(H)), (aw - 90, ah - 60))
    f = float(s)
    w, h, t = float(W) * f, float(H) * f, float(T) * f
    x0 = area[0] + (aw - w - t - 40) / 2
    y0 = area[1] + (ah - h) / 2
    corner = rng.choice(["radius", "chamfer", "sharp"])
    cr = value(rng, 2, min(12, float(min(W, H)) / 6), 1)
    c = float(cr) * f if corner != "sharp" else 0.0
    # outline
    if corner == "radius":
        pts: list[Point] = []
        for cx, cy, a0 in (
            (x0 + w - c, y0 + c, 0),
            (x0 + c, y0 + c, 90),
            (x0 + c, y0 + h - c, 180),
            (x0 + w - c, y0 + h - c, 270),
        ):
            pts += circle_points((cx, cy), c, a0, a0 + 90)
        d.line([*pts, pts[0]], StrokeClass.CONTOUR, THICK)
    elif corner == "chamfer":
        d.line(
            [
                (x0 + c, y0),
                (x0 + w - c, y0),
                (x0 + w, y0 + c),
                (x0 + w, y0 + h - c),
                (x0 + w - c, y0 + h),
                (x0 + c, y0 + h),
                (x0, y0 + h - c),
                (x0, y0 + c),
                (x0 + c, y0),
            ],
            StrokeClass.CONTOUR,
            THICK,
        )
    else:
        d.line(rect_pts(x0, y0, x0 + w, y0 + h), StrokeClass.CONTOUR, THICK)
    # corner holes
    inset = value(rng, max(float(cr) + 4, 6), min(float(W), float(H)) / 4 + 6, 1)
    hd = value(rng, 3, min(14, float(inset)), 1)
    e, hr = float(inset) * f, float(hd) * f / 2
    holes = [(x0 + e, y0 + e), (x0 + w - e, y0 + e), (x0 + e, y0 + h - e), (x0 + w - e, y0 + h - e)]
    for hc in holes:
        d.line(circle_points(hc, hr), StrokeClass.CONTOUR, THICK)
        centre_cross(d, hc, hr)
    # central bore or tapped holes
    bore = rng.random() < 0.6 and min(float(W), float(H)) > 40
    bd = value(rng, 8, min(float(W), float(H)) * 0.4, 1) if bore else None
    bc = (x0 + w / 2, y0 + h / 2)
    if bd:
        br = float(bd) * f / 2
        d.line(circle_points(bc, br), StrokeClass.CONTOUR, THICK)
        centre_cross(d, bc, br)
    thread = rng.random() < 0.75
    tm = int(rng.choice([3, 4, 5, 6, 8]))
    tpos = [(x0 + w / 2, y0 + e)] if bd else [(x0 + w / 2, y0 + h / 2)]
    if thread:
        for tc in tpos:
            d.line(circle_points(tc, tm * 0.85 * f / 2), StrokeClass.CONTOUR, THICK)
            d.line(circle_points(tc, tm * f / 2, 100, 370), StrokeClass.CONTOUR, THIN)
            centre_cross(d, tc, tm * f / 2)
    # side view
    sx = x0 + w + 40
    d.line(rect_pts(sx, y0, sx + t, y0 + h), StrokeClass.CONTOUR, THICK)
    for hc in holes[1::2]:
        for yy in (hc[1] - hr, hc[1] + hr):
            d.line([(sx, yy), (sx + t, yy)], StrokeClass.CONTOUR, THIN, HIDDEN)
        d.line([(sx - 2, hc[1]), (sx + t + 2, hc[1])], StrokeClass.OTHER, THIN, CENTER)
    # dimensions
    d.linear((x0, y0 + h), (x0 + w, y0 + h), "h", +1, callout(rng, Kind.LINEAR, W))
    d.linear((x0, y0), (x0, y0 + h), "v", -1, callout(rng, Kind.LINEAR, H))
    d.linear(holes[0], holes[1], "h", -1, callout(rng, Kind.LINEAR, W - 2 * inset), offsets=(12.0, 18.0, 24.0))
    d.linear((x0, y0), holes[0], "h", -1, callout(rng, Kind.LINEAR, inset), offsets=(6.0, 12.0))
    d.linear(holes[1], holes[3], "v", +1, callout(rng, Kind.LINEAR, H - 2 * inset), offsets=(12.0, 18.0))
    d.leader(
        (holes[1][0] + hr * 0.7071, holes[1][1] - hr * 0.7071),
        math.radians(135),
        callout(rng, Kind.DIAMETER, hd, count=4, fits=HOLE_FITS),
    )
    if bd:
        d.leader(
            (bc[0] - br * 0.7071, bc[1] + br * 0.7071),
            math.radians(-45),
            callout(rng, Kind.DIAMETER, bd, fits=HOLE_FITS),
        )
    if thread:
        pitch = Decimal(str({3: 0.5, 4: 0.7, 5: 0.8, 6: 1, 8: 1.25}[tm])) if rng.random() < 0.4 else None
        fit = str(rng.choice(["6H", "6g"])) if rng.random() < 0.2 else None
        th = Callout(Kind.THREAD, Decimal(tm), pitch=pitch, fit=fit, count=len(tpos))
        tc = tpos[0]
        d.leader((tc[0] + tm * f / 2 * 0.7071, tc[1] + tm * f / 2 * 0.7071), math.radians(-135), th)
    if corner == "radius":
        cc = (x0 + c, y0 + h - c)
        tip = (cc[0] - c * 0.7071, cc[1] + c * 0.7071)
        d.leader(tip, toward(tip, cc), callout(rng, Kind.RADIUS, cr, count=4, tolerances=False))
    elif corner == "chamfer":
        d.leader(
            (x0 + w - c / 2, y0 + h - c / 2), math.radians(-135), Callout(Kind.CHAMFER, cr, count=4, angle=Decimal(45))
        )
    d.linear((sx, y0 + h), (sx + t, y0 + h), "h", +1, callout(rng, Kind.LINEAR, T))
    view_label(d, "SIDE VIEW", (sx + t / 2, y0 - 6))
    return s, str(rng.choice(["MOUNTING PLATE", "COVER PLATE", "BASE PLATE", "ADAPTER PLATE"]))


def shaft(d: Drafter, rng: np.random.Generator, area: Rect) -> tuple[Decimal, str]:
    n_steps = int(rng.integers(2, 5))
    diams = sorted((value(rng, 10, 60, 1) for _ in range(n_steps)), reverse=bool(rng.random() < 0.5))
    diams = list(dict.fromkeys(diams))
    if len(diams) < 2:
        diams.append(diams[0] + 6)
    lens = [value(rng, 12, 60, 1) for _ in diams]
    L = sum(lens)
    aw, ah = area[2] - area[0], area[3] - area[1]
    s = _pick_scale((float(L), float(max(diams))), (aw - 60, ah - 90))
    f = float(s)
    x = area[0] + (aw - float(L) * f) / 2
    yc = area[1] + ah / 2
    ch = value(rng, 0.5, 2, 0.5)
    cf = float(ch) * f
    top: list[Point] = []
    xs = [x]
    for i, (D, ln) in enumerate(zip(diams, lens, strict=True)):
        r = float(D) * f / 2
        x1 = xs[-1] + float(ln) * f
        a = xs[-1] + (cf if i == 0 else 0)
        b = x1 - (cf if i == len(diams) - 1 else 0)
        top += [(xs[-1], yc - r + (cf if i == 0 else 0)), (a, yc - r), (b, yc - r)]
        if i == len(diams) - 1:
            top.append((x1, yc - r + cf))
        xs.append(x1)
    bottom = [(px, 2 * yc - py) for px, py in top]
    d.line(top, StrokeClass.CONTOUR, THICK)
    d.line(bottom, StrokeClass.CONTOUR, THICK)
    d.line([top[0], bottom[0]], StrokeClass.CONTOUR, THICK)
    d.line([top[-1], bottom[-1]], StrokeClass.CONTOUR, THICK)
    for xi, (da, db) in zip(xs[1:-1], pairwise(diams), strict=False):
        r = float(max(da, db)) * f / 2
        d.line([(xi, yc - r), (xi, yc + r)], StrokeClass.CONTOUR, THICK)
    for i in (0, len(diams) - 1):
        r = float(diams[i]) * f / 2
        xx = xs[i] + cf if i == 0 else xs[i + 1] - cf
        d.line([(xx, yc - r), (xx, yc + r)], StrokeClass.CONTOUR, THICK)
    d.line([(x - 4, yc), (xs[-1] + 4, yc)], StrokeClass.OTHER, THIN, CENTER)
    threaded = rng.random() < 0.5
    if threaded:  # thread on the last step: thin line at the minor diameter
        D = diams[-1]
        rm = float(D) * 0.85 * f / 2
        tl = float(lens[-1]) * f * 0.7
        for yy in (yc - rm, yc + rm):
            d.line([(xs[-1] - tl, yy), (xs[-1] - cf, yy)], StrokeClass.CONTOUR, THIN)
        d.line([(xs[-1] - tl, yc - float(D) * f / 2), (xs[-1] - tl, yc + float(D) * f / 2)], StrokeClass.CONTOUR, THICK)
    # diameters: dimension lines across the steps, rotated text above the shaft
    for i, D in enumerate(diams):
        if threaded and i == len(diams) - 1:
            continue
        r = float(D) * f / 2
        xm = (xs[i] + xs[i + 1]) / 2 + (rng.uniform(-0.15, 0.15) * float(lens[i]) * f)
        d.linear(
            (xm, yc - r),
            (xm, yc + r),
            "v",
            +1,
            callout(rng, Kind.DIAMETER, D, fits=SHAFT_FITS),
            offsets=(0.0,),
            outside=True,
        )
    # lengths chained above, overall below
    for i, ln in enumerate(lens):
        r = float(diams[i]) * f / 2
        d.linear(
            (xs[i], yc - r),
            (xs[i + 1], yc - r),
            "h",
            -1,
            callout(rng, Kind.LINEAR, ln),
            offsets=(float(max(diams)) * f / 2 - r + 8, float(max(diams)) * f / 2 - r + 14),
        )
    rmax0, rmax1 = float(diams[0]) * f / 2, float(diams[-1]) * f / 2
    d.linear(
        (xs[0], yc + rmax0),
        (xs[-1], yc + rmax1),
        "h",
        +1,
        callout(rng, Kind.LINEAR, L),
        offsets=(float(max(diams)) * f / 2 - min(rmax0, rmax1) + 10, float(max(diams)) * f / 2 + 18),
    )
    r_end = float(diams[-1]) * f / 2
    d.leader(
        (xs[-1] - cf / 2, yc + r_end - cf / 2),
        math.radians(-135),
        Callout(Kind.CHAMFER, ch, angle=Decimal(45), count=int(rng.choice([1, 1, 2]))),
    )
    if threaded:
        D = diams[-1]
        pitch = Decimal(str(rng.choice(["1", "1.5", "2", "1.25"]))) if rng.random() < 0.6 else None
        fit = "6g" if rng.random() < 0.2 else None
        d.leader(
            (xs[-1] - float(lens[-1]) * f * 0.35, yc - float(D) * f / 2),
            math.radians(90),
            Callout(Kind.THREAD, D, pitch=pitch, fit=fit),
        )
    # a fillet at the first shoulder
    if len(diams) > 1:
        i = int(np.argmax([float(a - b) for a, b in pairwise(diams)])) if diams[0] > diams[1] else 0
        xi = xs[i + 1]
        rsmall = float(min(diams[i], diams[i + 1])) * f / 2
        fr = value(rng, 0.5, 3, 0.5)
        left_big = diams[i] > diams[i + 1]
        tip = (xi + (1.0 if left_big else -1.0), yc + rsmall)
        d.leader(tip, math.radians(-90), callout(rng, Kind.RADIUS, fr, tolerances=False))
    return s, str(rng.choice(["DRIVE SHAFT", "SPINDLE", "STEPPED SHAFT", "AXLE", "PIN"]))


def flange(d: Drafter, rng: np.random.Generator, area: Rect) -> tuple[Decimal, str]:
    Do = value(rng, 60, 220, 5)
    Dh = value(rng, float(Do) * 0.35, float(Do) * 0.55, 1)
    Di = value(rng, float(Dh) * 0.35, float(Dh) * 0.75, 1)
    pcd = value(rng, (float(Dh) + float(Do)) / 2 - 2, (float(Dh) + float(Do)) / 2 + 2, 1)
    nh = int(rng.choice([3, 4, 6, 8]))
    hd = value(rng, 4, max(5, min(18, (float(Do) - float(Dh)) / 4)), 1)
    t, lh = value(rng, 6, 25), value(rng, 8, 40)
    tapped = Decimal(int(rng.choice([4, 5, 6, 8, 10, 12]))) if rng.random() < 0.35 else None
    if tapped:
        hd = tapped
    aw, ah = area[2] - area[0], area[3] - area[1]
    s = _pick_scale((float(Do) + float(t + lh) + 50, float(Do)), (aw - 80, ah - 50))
    f = float(s)
    ro, rh, ri, rp, rhd = (float(v) * f / 2 for v in (Do, Dh, Di, pcd, hd))
    cx = area[0] + (aw - 2 * ro - float(t + lh) * f - 50) / 2 + ro
    cy = area[1] + ah / 2
    c = (cx, cy)
    for r in (ro, ri):
        d.line(circle_points(c, r), StrokeClass.CONTOUR, THICK)
    d.line(circle_points(c, rh), StrokeClass.CONTOUR, THIN, HIDDEN)
    d.line(circle_points(c, rp), StrokeClass.OTHER, THIN, CENTER)
    d.line([(cx - ro - 4, cy), (cx + ro + 4, cy)], StrokeClass.OTHER, THIN, CENTER)
    d.line([(cx, cy - ro - 4), (cx, cy + ro + 4)], StrokeClass.OTHER, THIN, CENTER)
    a0 = 90.0 if nh % 2 else 45.0 if nh == 4 else 0.0
    hole_c = []
    for k in range(nh):
        a = math.radians(a0 + 360 * k / nh)
        hc = (cx + rp * math.cos(a), cy - rp * math.sin(a))
        hole_c.append((hc, a))
        if tapped:  # ISO thread end view: thick minor circle, thin 3/4 major arc
            d.line(circle_points(hc, rhd * 0.85), StrokeClass.CONTOUR, THICK)
            d.line(circle_points(hc, rhd, 100, 370), StrokeClass.CONTOUR, THIN)
        else:
            d.line(circle_points(hc, rhd), StrokeClass.CONTOUR, THICK)
        d.line(
            [
                (hc[0] - math.cos(a) * (rhd + 2), hc[1] + math.sin(a) * (rhd + 2)),
                (hc[0] + math.cos(a) * (rhd + 2), hc[1] - math.sin(a) * (rhd + 2)),
            ],
            StrokeClass.OTHER,
            THIN,
            CENTER,
        )
    # section A-A to the right
    sx = cx + ro + 45
    T, LH = float(t) * f, float(lh) * f
    prof = [
        (sx, cy - ro),
        (sx + T, cy - ro),
        (sx + T, cy - rh),
        (sx + T + LH, cy - rh),
        (sx + T + LH, cy - ri),
        (sx, cy - ri),
        (sx, cy - ro),
    ]
    for sign in (1, -1):
        pts = [(px, cy + sign * (py - cy)) for px, py in prof]
        d.line(pts, StrokeClass.CONTOUR, THICK)
        y_a, y_b = sorted((cy - sign * ro, cy - sign * ri))
        hatch(d, (sx, y_a, sx + T, y_b), 3.0)
        y_a, y_b = sorted((cy - sign * rh, cy - sign * ri))
        hatch(d, (sx + T, y_a, sx + T + LH, y_b), 3.0)
    d.line([(sx, cy - ri), (sx, cy + ri)], StrokeClass.CONTOUR, THICK)
    d.line([(sx + T + LH, cy - ri), (sx + T + LH, cy + ri)], StrokeClass.CONTOUR, THICK)
    d.line([(sx - 4, cy), (sx + T + LH + 4, cy)], StrokeClass.OTHER, THIN, CENTER)
    view_label(d, "SECTION A-A", (sx + (T + LH) / 2, cy - ro - 14))
    hc, _ = hole_c[0]
    tip = (hc[0] + rhd * 0.7071, hc[1] - rhd * 0.7071)
    if tapped:
        d.leader(tip, math.radians(135), Callout(Kind.THREAD, tapped, count=nh))
    else:
        d.leader(tip, math.radians(135), callout(rng, Kind.DIAMETER, hd, count=nh, tolerances=False))
    tip = (cx + ro * math.cos(math.radians(-30)), cy - ro * math.sin(math.radians(-30)))
    d.leader(tip, toward(tip, c), callout(rng, Kind.DIAMETER, Do))
    pa = math.radians(a0 + 180 / nh) + math.pi
    tip = (cx + rp * math.cos(pa), cy - rp * math.sin(pa))
    d.leader(tip, toward(tip, c), Callout(Kind.DIAMETER, pcd, reference=bool(rng.random() < 0.2)))
    # angle between two adjacent holes
    d.angular(
        c,
        a0,
        a0 + 360 / nh,
        (rp + rhd, rp + rhd),
        callout(rng, Kind.ANGULAR, Decimal(360) / nh, count=1, tolerances=True),
        radii=(rp + rhd + 8, ro + 8, ro + 16),
    )
    # section dimensions
    d.linear((sx, cy + ro), (sx + T, cy + ro), "h", +1, callout(rng, Kind.LINEAR, t))
    d.linear(
        (sx, cy + ro), (sx + T + LH, cy + rh), "h", +1, callout(rng, Kind.LINEAR, t + lh), offsets=(16.0, 22.0, 28.0)
    )
    d.linear((sx + T + LH, cy - rh), (sx + T + LH, cy + rh), "v", +1, callout(rng, Kind.DIAMETER, Dh, fits=SHAFT_FITS))
    d.linear(
        (sx + T + LH, cy - ri),
        (sx + T + LH, cy + ri),
        "v",
        +1,
        callout(rng, Kind.DIAMETER, Di, fits=HOLE_FITS),
        offsets=(18.0, 26.0, 34.0),
    )
    if rng.random() < 0.5:
        d.linear((sx, cy - ro), (sx, cy + ro), "v", -1, callout(rng, Kind.DIAMETER, Do), offsets=(8.0, 14.0))
    return s, str(rng.choice(["FLANGE", "BEARING FLANGE", "HUB FLANGE", "COUPLING FLANGE"]))


def bracket(d: Drafter, rng: np.random.Generator, area: Rect) -> tuple[Decimal, str]:
    Lb, Hb = value(rng, 50, 160, 5), value(rng, 40, 120, 5)
    t = value(rng, 4, 15)
    W = value(rng, 25, 80, 5)
    ang = Decimal(int(rng.choice([15, 20, 30, 45, 60])))
    R = value(rng, 2, max(3, float(t)), 1)
    aw, ah = area[2] - area[0], area[3] - area[1]
    s = _pick_scale((float(Lb) + float(W) + 60, float(Hb) + float(W) + 40), (aw - 80, ah - 60))
    f = float(s)
    lb, hb, tt, ww, rr = (float(v) * f for v in (Lb, Hb, t, W, R))
    x0 = area[0] + (aw - lb - ww - 50) / 2 + 10
    yb = area[1] + (ah - hb - ww - 20) / 2 + hb  # bottom of the front view
    if tt * math.tan(math.radians(float(ang))) > hb - tt - 4:
        ang = Decimal(15)
    cut = tt * math.tan(math.radians(float(ang)))
    # L-profile: vertical leg on the left, top edge of the leg cut at an angle
    outline = [(x0, yb), (x0 + lb, yb), (x0 + lb, yb - tt), (x0 + tt + rr, yb - tt)]
    outline += circle_points((x0 + tt + rr, yb - tt - rr), rr, 270, 180)[1:]
    outline += [(x0 + tt, yb - hb + cut), (x0, yb - hb), (x0, yb)]
    d.line(outline, StrokeClass.CONTOUR, THICK)
    # top view below: base plate with two holes
    yt = yb + 22
    d.line(rect_pts(x0, yt, x0 + lb, yt + ww), StrokeClass.CONTOUR, THICK)
    d.line([(x0 + tt, yt), (x0 + tt, yt + ww)], StrokeClass.CONTOUR, THICK)
    hd = value(rng, 4, max(5, min(14, float(W) / 3)), 1)
    hx = value(rng, float(t) + float(hd) + 3, float(Lb) - float(hd) - 3, 1)
    hr = float(hd) * f / 2
    hcs = [(x0 + float(hx) * f, yt + ww * 0.3), (x0 + float(hx) * f, yt + ww * 0.7)]
    for hc in hcs:
        d.line(circle_points(hc, hr), StrokeClass.CONTOUR, THICK)
        centre_cross(d, hc, hr)
        for xx in (hc[0] - hr, hc[0] + hr):
            d.line([(xx, yb - tt), (xx, yb)], StrokeClass.CONTOUR, THIN, HIDDEN)
    d.linear((x0, yb - hb), (x0, yb), "v", -1, callout(rng, Kind.LINEAR, Hb))
    d.linear((x0 + lb, yb - tt), (x0 + lb, yb), "v", +1, callout(rng, Kind.LINEAR, t), offsets=(8.0, 14.0))
    d.linear((x0, yb - hb), (x0 + tt, yb - hb + cut), "h", -1, callout(rng, Kind.LINEAR, t), offsets=(8.0, 14.0))
    d.linear((x0 + lb, yt), (x0 + lb, yt + ww), "v", +1, callout(rng, Kind.LINEAR, W), offsets=(8.0, 14.0))
    d.linear((x0, yt + ww), (x0 + lb, yt + ww), "h", +1, callout(rng, Kind.LINEAR, Lb))
    d.linear((x0, yt), hcs[0], "h", -1, callout(rng, Kind.LINEAR, hx), offsets=(6.0, 10.0))
    d.leader(
        (hcs[1][0] + hr * 0.7071, hcs[1][1] + hr * 0.7071),
        math.radians(-135),
        callout(rng, Kind.DIAMETER, hd, count=2, fits=HOLE_FITS),
    )
    fc = (x0 + tt + rr, yb - tt - rr)
    tip = (fc[0] - rr * 0.7071, fc[1] + rr * 0.7071)
    d.leader(tip, toward(fc, tip), callout(rng, Kind.RADIUS, R, tolerances=False))
    # angle of the cut against the horizontal through the leg's outer corner
    slant = tt / math.cos(math.radians(float(ang)))
    d.angular(
        (x0, yb - hb),
        -float(ang),
        0.0,
        (slant, 0.0),
        callout(rng, Kind.ANGULAR, ang),
        radii=(slant + 10, slant + 16, slant + 24),
    )
    return s, str(rng.choice(["ANGLE BRACKET", "MOUNTING BRACKET", "SUPPORT BRACKET", "L-BRACKET"]))


PARTS: dict[str, PartFn] = {"plate": plate, "shaft": shaft, "flange": flange, "bracket": bracket}
