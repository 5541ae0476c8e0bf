"""What makes a CAD-style sheet look like a SOLIDWORKS (or Inventor, Creo) export, beside its frames,
datums and roughness marks (`annotate`): the template's title block with its tolerance block and
sign-off rows, a revision table, section and detail view labels, Century-Gothic-like lettering,
dimensions in a colour turned gray, contours as thin as the dimension lines, short hidden dashes,
and 1-bit scans.

Every choice here comes from a stream of its own (`look_rng`), so a plain drawing's draws, and so
the plain splits, stay byte for byte what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from dimflow.synth.drafting import THIN, Drafter
from dimflow.synth.scene import HIDDEN, Rect, Run, Scene, StrokeClass, TextBlock, layout_lines, measure

# SOLIDWORKS letters in Century Gothic by default; "adventor" is TeX Gyre Adventor, its free look-alike
CAD_FONTS = ("adventor", "adventor", "adventor", "osifont", "dejavu")
# colour exports printed or saved gray: black, blue, red, dark green, magenta, green (luma of each)
COLOUR_INKS = (0, 0, 29, 76, 90, 105, 150)
SHORT_HIDDEN = (1.5, 0.75)
SW_BLOCK_H = 52.0


@dataclass(frozen=True)
class CadLook:
    font: str | None  # None: the drawing's own font
    dimension_ink: int
    sw_title_block: bool  # the SOLIDWORKS template's block, else the ISO 7200-style one
    revision_table: bool
    view_labels: int  # section / detail labels to place
    thin_contours: float  # contour width in mm, 0: as drafted
    short_hidden: bool
    scan_threshold: int  # 1-bit scan at this gray level, 0: none


def look_rng(seed: int, index: int, attempt: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, attempt, 0xCAD])


def pick_look(rng: np.random.Generator) -> CadLook:
    return CadLook(
        font=str(rng.choice(CAD_FONTS)) if rng.random() < 0.6 else None,
        dimension_ink=int(rng.choice(COLOUR_INKS)),
        sw_title_block=bool(rng.random() < 0.6),
        revision_table=bool(rng.random() < 0.5),
        view_labels=int(rng.choice([0, 1, 1, 2])),
        thin_contours=float(rng.choice([0.25, 0.3, 0.35])) if rng.random() < 0.6 else 0.0,
        short_hidden=bool(rng.random() < 0.5),
        scan_threshold=int(rng.integers(110, 200)) if rng.random() < 0.15 else 0,
    )


def scan_threshold(look: CadLook) -> int:
    """The 1-bit scan's threshold, kept above the dimensions' ink: a scan that drops them has no truth left."""
    return max(look.scan_threshold, look.dimension_ink + 40) if look.scan_threshold else 0


def _in_cell(
    d: Drafter,
    lines: list[str],
    cell: Rect,
    cap: float,
    where: str = "top",
    centre: bool = False,
    room: float = 0.0,
    gap: float = 0.6,
) -> bool:
    """Title-block text in a cell: at its top (a label) or bottom (the value, `room` mm left
    for the label above it), lettering shrunk until it fits as a template's field does. False when
    it cannot be placed: the caller then states no field for it."""
    pad = 0.8
    font = d.style.font
    widest = max(measure(font, t, cap)[0] for t in lines)
    cap = min(cap, cap * (cell[2] - cell[0] - 2 * pad) / widest) if widest else cap
    _, _, h = layout_lines(font, [(t, cap) for t in lines], gap=cap * gap)
    tall = cell[3] - cell[1] - 1.2 - room
    if h > tall:
        cap *= tall / h
    if cap < 0.8:
        return False
    runs, w, h = layout_lines(font, [(t, cap) for t in lines], gap=cap * gap)
    x = (cell[0] + cell[2]) / 2 - w / 2 if centre else cell[0] + pad
    y = {"top": cell[1] + 0.6, "bottom": cell[3] - 0.6 - h, "middle": (cell[1] + cell[3]) / 2 - h / 2}[where]
    return d.text(TextBlock(runs, font, (x, y), (w, h), role="title_block", string="\n".join(lines)), 0.1)


def scale_text(scale: Decimal) -> str:
    """A title block's scale as drafters write it: `2:1`, `1:5`."""
    return f"{scale}:1" if scale >= 1 else f"1:{Decimal(1) / scale:g}"


def sw_title_block(
    d: Drafter,
    rng: np.random.Generator,
    frame: Rect,
    title: str,
    scale: Decimal,
    size: str,
    names: tuple[str, ...],
    materials: tuple[str, ...],
) -> tuple[Rect, dict[str, str]]:
    """The SOLIDWORKS drawing template's block, as on the real sheets in `samples/real`: a tolerance
    block ("UNLESS OTHERWISE SPECIFIED: ..."), finish and "DO NOT SCALE DRAWING" cells above, the
    NAME / SIGNATURE / DATE rows (DRAWN, CHK'D, APPV'D, MFG, Q.A), material and weight, and the
    title, drawing number, size, scale and sheet on the right. Fields are filled as drafters do:
    some, not all. Returns the block's rect and the fields it states (only those drawn)."""
    w = min(frame[2] - frame[0], 180.0)
    h = SW_BLOCK_H
    x1, y1 = frame[2], frame[3]
    x0, y0 = x1 - w, y1 - h
    band = y0 + h * 0.32  # the upper band: tolerances, finish, deburr, do-not-scale / revision
    mid = y0 + (band - y0) * 0.45
    xa, xb, xc, xr = x0 + w * 0.19, x0 + w * 0.45, x0 + w * 0.55, x0 + w * 0.85
    rows = 8
    rh = (y1 - band) / rows
    xn, xs, xd, xm = x0 + w * 0.065, x0 + w * 0.18, x0 + w * 0.295, x0 + w * 0.355
    yt, yn = band + rh * 4.8, y1 - rh * 1.2  # title above number above scale/sheet
    xsz, xsh = x1 - w * 0.07, x0 + w * 0.82

    def line(*pts: tuple[float, float]) -> None:
        d.line(list(pts), StrokeClass.OTHER, THIN)

    d.line([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], StrokeClass.OTHER, 0.5)
    line((x0, band), (x1, band))
    for x in (xa, xb, xc):
        line((x, y0), (x, band))
    line((xc, mid), (x1, mid))
    line((xr, y0), (xr, mid))
    for r in range(1, rows):
        line((x0, band + r * rh), (xm if r >= 5 else xc, band + r * rh))
    for x in (xn, xs, xd, xm, xc):
        line((x, band), (x, y1))
    line((xc, yt), (x1, yt))
    line((xc, yn), (x1, yn))
    line((xsz, yt), (xsz, yn))
    line((xsh, yn), (xsh, y1))
    line((xm, y1 - rh), (xc, y1 - rh))

    fields: dict[str, str] = {}
    small = 1.5
    tol = ["UNLESS OTHERWISE SPECIFIED:", "DIMENSIONS ARE IN MILLIMETERS", "SURFACE FINISH:", "TOLERANCES:",
           "  LINEAR:", "  ANGULAR:"]  # fmt: skip
    if rng.random() < 0.5:  # a filled-in tolerance block: numbers that are no dimension
        tol[4] += f" {rng.choice(['±0.1', '±0.2', '±0.05', '±0.5'])}"
        tol[5] += f" {rng.choice(['±0.5°', '±1°', '±0°30′'])}"
        if rng.random() < 0.5:
            tol[2] += f" Ra {rng.choice(['0.8', '1.6', '3.2', '6.3'])}"
    if _in_cell(d, tol, (x0, y0, xa, band), small * 0.9, gap=0.3):
        fields["units"] = "mm"
    finish = "FINISH:" + (f" {rng.choice(['ANODIZE CLEAR', 'ZINC PLATED', 'BLACK OXIDE', 'NONE'])}"
                          if rng.random() < 0.4 else "")  # fmt: skip
    _in_cell(d, [finish], (xa, y0, xb, band), small)
    _in_cell(d, ["DEBURR AND", "BREAK SHARP", "EDGES"], (xb, y0, xc, band), small)
    _in_cell(d, ["DO NOT SCALE DRAWING"], (xc, y0, xr, mid), small, where="middle", centre=True)
    label_w = measure(d.style.font, "REVISION", small)[0] + 2.5
    if _in_cell(d, ["REVISION"], (xr, y0, x1, mid), small, where="middle") and rng.random() < 0.5:
        rev = str(rng.choice(["A", "B", "C", "01", "02"]))
        if _in_cell(d, [rev], (xr + label_w, y0, x1, mid), 2.5, where="middle", centre=True):
            fields["revision"] = rev
    for label, (a, b) in zip(["NAME", "SIGNATURE", "DATE"], [(xn, xs), (xs, xd), (xd, xm)], strict=True):
        _in_cell(d, [label], (a, band, b, band + rh), small, where="middle", centre=True)
    date = f"{rng.integers(1, 29):02d}.{rng.integers(1, 13):02d}.2026"
    for r, label in enumerate(["DRAWN", "CHK'D", "APPV'D", "MFG", "Q.A"], start=1):
        row = (band + r * rh, band + (r + 1) * rh)
        if not _in_cell(d, [label], (x0, row[0], xn, row[1]), small * 0.9, where="middle"):
            continue
        if r == 1 or rng.random() < 0.3:  # who drew it, and sometimes who checked
            name = str(rng.choice(names))
            named = _in_cell(d, [name], (xn, row[0], xs, row[1]), small, where="middle")
            dated = rng.random() < 0.7 and _in_cell(d, [date], (xd, row[0], xm, row[1]), small, where="middle")
            if r == 1 and named:
                fields["drawn_by"] = name
            if r == 1 and dated:
                fields["date"] = date
    if _in_cell(d, ["MATERIAL:"], (xm, band + 5 * rh, xc, y1 - rh), small) and rng.random() < 0.7:
        material = str(rng.choice(materials))
        if _in_cell(d, [material], (xm, band + 5 * rh, xc, y1 - rh), 3.0, where="bottom", room=2.2):
            fields["material"] = material
    weight = "WEIGHT:" + (f" {rng.uniform(0.02, 5):.2f} kg" if rng.random() < 0.5 else "")
    _in_cell(d, [weight], (xm, y1 - rh, xc, y1), small, where="middle")
    if _in_cell(d, ["TITLE:"], (xc, band, x1, yt), small):
        big = float(rng.choice([4.5, 5.0, 6.0]))
        if _in_cell(d, [title], (xc + 2.0, band, x1, yt), big, where="bottom", room=2.2):
            fields["title"] = title
    own = f"{title.replace(' ', '_')}-{rng.integers(1, 20)}.{rng.integers(1, 40):02d}"  # SOLIDWORKS: the file name
    number = str(rng.choice([f"DF-{rng.integers(10000, 99999)}", own]))
    labelled = _in_cell(d, ["DWG NO."], (xc, yt, xsz, yn), small)
    if labelled and _in_cell(d, [number], (xc + 1.5, yt, xsz, yn), 4.5, where="bottom", room=2.2):
        fields["drawing_number"] = number
    _in_cell(d, [size], (xsz, yt, x1, yn), 2.5, where="middle", centre=True)
    s = scale_text(scale)
    if _in_cell(d, [f"SCALE:{s}"], (xc, yn, xsh, y1), small, where="middle"):
        fields["scale"] = s
    if _in_cell(d, ["SHEET 1 OF 1"], (xsh, yn, x1, y1), small, where="middle"):
        fields["sheet"] = "1 OF 1"
    d.scene.regions.append(("title_block", (x0, y0, x1, y1)))
    return (x0, y0, x1, y1), fields


def revision_table(d: Drafter, rng: np.random.Generator, frame: Rect, names: tuple[str, ...]) -> bool:
    """A revision table in the frame's top right corner (ZONE / REV / DESCRIPTION / DATE / APPROVED),
    one to three rows; general text, never a dimension. Not drawn where the part already is."""
    n = int(rng.integers(1, 4))
    cols = [("ZONE", 12.0), ("REV", 10.0), ("DESCRIPTION", 48.0), ("DATE", 20.0), ("APPROVED", 22.0)]
    w, rh, cap = sum(c[1] for c in cols), 5.0, 1.8
    x1, y0 = frame[2], frame[1]
    x0, y1 = x1 - w, y0 + rh * (n + 2)
    if not d.occ.rect_free((x0 + 1.0, y0 + 1.0, x1 - 1.0, y1), 0.3):  # the frame's own lines touch it
        return False
    saved = d.area
    d.area = frame
    d.line([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], StrokeClass.OTHER, THIN)
    for r in range(1, n + 2):
        d.line([(x0, y0 + r * rh), (x1, y0 + r * rh)], StrokeClass.OTHER, THIN)
    xs = [x0]
    for _, cw in cols:
        xs.append(xs[-1] + cw)
    for x in xs[1:-1]:
        d.line([(x, y0 + rh), (x, y1)], StrokeClass.OTHER, THIN)
    what = ["INITIAL RELEASE", "ADDED CHAMFER", "TOLERANCE CHANGED", "HOLE POSITION UPDATED", "MATERIAL CHANGED",
            "ECO 2031"]  # fmt: skip

    def put(text: str, x: float, y: float, width: float) -> None:
        tw = measure(d.style.font, text, cap)[0]
        runs, bw, bh = layout_lines(d.style.font, [(text, cap)])
        block = TextBlock(runs, d.style.font, (x + max(0.5, (width - tw) / 2), y + (rh - bh) / 2), (bw, bh),
                          role="text", string=text)  # fmt: skip
        d.text(block, 0.1)

    put("REVISIONS", x0, y0, w)
    for (label, cw), x in zip(cols, xs, strict=False):
        put(label, x, y0 + rh, cw)
    for r in range(n):
        y = y0 + rh * (r + 2)
        row = [f"{'ABCD'[int(rng.integers(0, 4))]}{int(rng.integers(1, 5))}", "ABCDE"[r], str(rng.choice(what)),
               f"2026-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}", str(rng.choice(names))]  # fmt: skip
        for text, (_, cw), x in zip(row, cols, xs, strict=False):
            put(text, x, y, cw)
    d.area = saved
    return True


def view_labels(d: Drafter, rng: np.random.Generator, area: Rect, n: int) -> int:
    """`SECTION B-B` / `DETAIL C` labels with their scale on the line below, in free room of the
    drawing area, as CAD views are captioned: text that reads like a ratio, never a dimension."""
    placed = 0
    h = d.style.text_height
    for _ in range(n):
        letter = "BCDEFG"[int(rng.integers(0, 6))]
        ratio = str(rng.choice(["1 : 2", "2 : 1", "1 : 1", "5 : 1", "1 : 5"]))
        lines = [f"SECTION {letter}-{letter}", f"SCALE {ratio}"] if rng.random() < 0.6 else \
            [f"DETAIL {letter}", f"SCALE {ratio}"]  # fmt: skip
        sizes = [(lines[0], h * 1.2), (lines[1], h)]
        runs, w, bh = layout_lines(d.style.font, sizes, gap=h * 0.6)
        runs = [Run(r.text, (w - measure(d.style.font, r.text, r.height)[0]) / 2, r.baseline, r.height) for r in runs]
        for _attempt in range(30):
            x = rng.uniform(area[0], max(area[0], area[2] - w))
            y = rng.uniform(area[1], max(area[1], area[3] - bh))
            if d.text(TextBlock(runs, d.style.font, (x, y), (w, bh), role="text", string="\n".join(lines)), 1.5):
                placed += 1
                break
    return placed


def restyle_lines(scene: Scene, look: CadLook) -> None:
    """A CAD export's line weights: contours as thin as the dimension lines, short hidden dashes."""
    for s in scene.strokes:
        if look.thin_contours and s.cls == StrokeClass.CONTOUR and s.width > look.thin_contours:
            s.width = look.thin_contours
        if look.short_hidden and s.pattern == HIDDEN:
            s.pattern = SHORT_HIDDEN
