"""One synthetic drawing: sheet, border with zones, title block, notes, a dimensioned
part, rendered at a chosen dpi with optional degradations, plus its ground truth."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

from dimflow.grammar import Callout
from dimflow.synth.annotate import Annotations, annotate
from dimflow.synth.cad_sheet import (
    SW_BLOCK_H,
    CadLook,
    look_rng,
    pick_look,
    restyle_lines,
    revision_table,
    scale_text,
    scan_threshold,
    sw_title_block,
    view_labels,
)
from dimflow.synth.drafting import THICK, THIN, Drafter, DraftStyle
from dimflow.synth.parts import PARTS, rect_pts
from dimflow.synth.render import Degradation, Rendered, degrade, pick_degradation, render
from dimflow.synth.scene import Occupancy, Rect, Scene, StrokeClass, TextBlock, layout_lines

SHEETS = {"A4": (297.0, 210.0), "A4P": (210.0, 297.0), "A3": (420.0, 297.0)}
FONTS = ("osifont", "osifont", "dejavu", "liberation", "dejavu-condensed")
DPIS = (150, 200, 200, 250, 300)
MATERIALS = ("AL 6061-T6", "S235JR", "C45E", "X5CrNi18-10", "42CrMo4", "EN AW-7075", "POM-C", "CuZn39Pb3")
NAMES = ("J. MUELLER", "A. ROSSI", "K. TANAKA", "M. DUBOIS", "S. NOWAK", "L. GARCIA", "P. SMITH")
NOTES = (
    "ALL DIMENSIONS IN MM",
    "GENERAL TOLERANCES ISO 2768-m",
    "BREAK ALL SHARP EDGES",
    "REMOVE ALL BURRS",
    "SURFACE FINISH Ra 3.2 UNLESS STATED",
    "DO NOT SCALE DRAWING",
    "ANODIZE CLEAR AFTER MACHINING",
    "HARDEN AND TEMPER 28-32 HRC",
)


@dataclass
class SynthDrawing:
    drawing_id: str  # the dataset's name for it, not the contract's content hash
    part: str
    sheet: str
    dpi: int
    font: str
    degradation: Degradation
    scene: Scene
    rendered: Rendered
    annotations: Annotations | None = None  # frames, datums, roughness (cad sheets only), in sheet mm
    title_fields: dict[str, str] = field(default_factory=dict)  # what the title block states

    def callouts(self) -> list[tuple[Callout, TextBlock, tuple[float, float, float, float]]]:
        return [
            (t.callout, t, box)
            for t, box in zip(self.scene.texts, self.rendered.text_boxes, strict=True)
            if t.callout is not None
        ]


def _text(
    d: Drafter,
    lines: list[str],
    at: tuple[float, float],
    height: float,
    role: str = "text",
    margin: float = 0.5,
    bottom: bool = False,
) -> bool:
    """Place general text by its top-left corner (or bottom-left with `bottom`)."""
    runs, w, h = layout_lines(d.style.font, [(s, height) for s in lines], gap=height * 0.6)
    origin = (at[0], at[1] - h) if bottom else at
    return d.text(TextBlock(runs, d.style.font, origin, (w, h), role=role, string="\n".join(lines)), margin)


def _border(d: Drafter, sheet: tuple[float, float], frame: Rect) -> None:
    W, H = sheet
    d.line(rect_pts(*frame), StrokeClass.OTHER, 0.7)
    d.line(rect_pts(5, 5, W - 5, H - 5), StrokeClass.OTHER, THIN)
    nx, ny = round((frame[2] - frame[0]) / 50), round((frame[3] - frame[1]) / 50)
    for i in range(1, nx):
        x = frame[0] + (frame[2] - frame[0]) * i / nx
        for y0, y1 in ((5, frame[1]), (frame[3], H - 5)):
            d.line([(x, y0), (x, y1)], StrokeClass.OTHER, THIN)
    for j in range(1, ny):
        y = frame[1] + (frame[3] - frame[1]) * j / ny
        for x0, x1 in ((5, frame[0]), (frame[2], W - 5)):
            d.line([(x0, y), (x1, y)], StrokeClass.OTHER, THIN)
    saved = d.area
    d.area = (0, 0, W, H)
    for i in range(nx):
        cx = frame[0] + (frame[2] - frame[0]) * (i + 0.5) / nx
        for y in (5.8, frame[3] + 0.8):
            _text(d, [str(nx - i)], (cx - 1.2, y), 2.5, margin=0.1)
    for j in range(ny):
        cy = frame[1] + (frame[3] - frame[1]) * (j + 0.5) / ny
        for x in (6.0 if frame[0] < 15 else 9.0, frame[2] + 1.2):
            _text(d, ["ABCDEFGH"[j]], (x, cy - 1.2), 2.5, margin=0.1)
    d.area = saved


def _title_block(
    d: Drafter, rng: np.random.Generator, frame: Rect, title: str, scale: Decimal, sheet: str
) -> tuple[Rect, dict[str, str]]:
    w, h = (180.0, 44.0) if sheet == "A3" else (170.0, 40.0)
    x1, y1 = frame[2], frame[3]
    x0, y0 = x1 - w, y1 - h
    d.line(rect_pts(x0, y0, x1, y1), StrokeClass.OTHER, THICK)
    rows = [y0 + h * f for f in (0.25, 0.5, 0.75)]
    cols = [x0 + w * f for f in (0.22, 0.44, 0.66)]
    for y in rows:
        d.line([(x0, y), (x1, y)], StrokeClass.OTHER, THIN)
    bands = [(y0, rows[1]), (rows[2], y1)]  # the title row keeps its first two cells joined
    for x in cols:
        for ya, yb in bands if x == cols[0] else [(y0, y1)]:
            d.line([(x, ya), (x, yb)], StrokeClass.OTHER, THIN)
    s = scale_text(scale)
    number = f"DF-{rng.integers(10000, 99999)}-{rng.integers(1, 20):02d}"
    cells = {
        (0, 0): ("DRAWN", str(rng.choice(NAMES))),
        (0, 1): ("CHECKED", str(rng.choice(NAMES))),
        (0, 2): ("DATE", f"2026-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"),
        (0, 3): ("SCALE", s),
        (1, 0): ("MATERIAL", str(rng.choice(MATERIALS))),
        (1, 2): ("MASS", f"{rng.uniform(0.05, 9):.2f} kg"),
        (1, 3): ("SHEET", "1 OF 1"),
        (2, 0): ("TITLE", title),
        (3, 0): ("DWG NO.", number),
        (3, 2): ("REV", str(rng.choice(["A", "B", "C", "01", "02"]))),
        (3, 3): ("SIZE", sheet),
    }
    ys = [y0, *rows, y1]
    xs = [x0, *cols, x1]
    for (r, c), (label, val) in cells.items():
        _text(d, [label], (xs[c] + 1.0, ys[r] + 0.8), 1.8, role="title_block", margin=0.1)
        _text(
            d,
            [val],
            (xs[c] + 1.5, ys[r + 1] - 1.0),
            3.5 if r >= 2 else 2.5,
            role="title_block",
            margin=0.1,
            bottom=True,
        )
    d.scene.regions.append(("title_block", (x0, y0, x1, y1)))
    names = {"SCALE": "scale", "MATERIAL": "material", "SHEET": "sheet", "TITLE": "title", "DWG NO.": "drawing_number",
             "REV": "revision", "DRAWN": "drawn_by", "DATE": "date"}  # fmt: skip
    fields = {names[label]: val for label, val in cells.values() if label in names}
    return (x0, y0, x1, y1), fields


def generate(seed: int, index: int, degrade_share: float = 0.3, cad: bool = False) -> SynthDrawing:
    """Drawing `index` of the dataset with `seed`: the same pair always gives the same drawing.
    `cad` adds what CAD sheets carry beside dimensions: feature control frames, datum feature
    symbols and roughness symbols (`dimflow.synth.annotate`), and a CAD export's look
    (`dimflow.synth.cad_sheet`); without it the drawing is the one the dataset has always had for
    that seed and index."""
    for attempt in range(20):
        rng = np.random.default_rng([seed, index, attempt])
        look = pick_look(look_rng(seed, index, attempt)) if cad else None
        drawing = _generate(rng, f"{seed:04d}-{index:05d}", degrade_share, cad, look)
        if 5 <= len(drawing.callouts()) <= 20:
            return drawing
    raise RuntimeError(f"could not lay out drawing {index} of seed {seed} with 5-20 callouts")


def _generate(
    rng: np.random.Generator, name: str, degrade_share: float, cad: bool = False, look: CadLook | None = None
) -> SynthDrawing:
    sheet = str(rng.choice(["A3", "A4", "A4P"], p=[0.45, 0.35, 0.2]))
    W, H = SHEETS[sheet]
    font = str(rng.choice(FONTS))
    dpi = int(rng.choice(DPIS))
    style = DraftStyle(
        font=font,
        text_height=float(rng.choice([3.5, 3.5, 3.0, 2.5])),
        decimal_comma=bool(rng.random() < 0.3),
        diameter_glyph=str(rng.choice(["Ø", "Ø", "⌀"])),
        times_glyph=str(rng.choice(["x", "x", "X", "×"])),
        fit_space=bool(rng.random() < 0.7),
        arrow_len=float(rng.choice([2.5, 3.0, 3.5])),
        paren_tolerance=bool(rng.random() < 0.25),
        dimension_ink=int(rng.choice([0, 0, 70, 110])),
    )
    if look is not None:  # after every draw of the plain style, so plain drawings stay as they were
        style = replace(style, font=look.font or style.font, dimension_ink=look.dimension_ink)
        font = style.font
    scene = Scene(W, H, dimension_ink=style.dimension_ink)
    occ = Occupancy(W, H)
    frame = (20.0, 10.0, W - 10, H - 10)
    d = Drafter(scene, occ, style, rng, frame)
    _border(d, (W, H), frame)
    part_name = str(rng.choice(list(PARTS)))
    sw_block = look is not None and look.sw_title_block
    tb_h = SW_BLOCK_H if sw_block else 44.0 if sheet == "A3" else 40.0
    area = (frame[0] + 4, frame[1] + 4, frame[2] - 4, frame[3] - tb_h - 4)
    d.area = area
    scale, title = PARTS[part_name](d, rng, area)
    d.area = frame
    if sw_block:
        _, title_fields = sw_title_block(d, rng, frame, title, scale, sheet[:2], NAMES, MATERIALS)
    else:
        _, title_fields = _title_block(d, rng, frame, title, scale, sheet[:2])  # the size, not the orientation
    notes = ["NOTES:"] + [
        f"{i + 1}. {n}" for i, n in enumerate(rng.choice(NOTES, size=int(rng.integers(2, 5)), replace=False))
    ]
    if sw_block:  # the block spans the sheet's foot: notes go above it
        _text(d, notes, (frame[0] + 4, frame[3] - tb_h - 2), 2.5, bottom=True)
    else:
        _text(d, notes, (frame[0] + 4, frame[3] - tb_h + 2), 2.5)
    annotations = None
    if cad:  # drawn last, from the same stream, so a plain drawing's draws are untouched
        d.area = area
        annotations = annotate(d, rng, stroked_sign=bool(rng.random() < 0.5))
    if look is not None:
        if look.revision_table:
            revision_table(d, rng, frame, NAMES)
        view_labels(d, rng, area, look.view_labels)
        restyle_lines(scene, look)
    rendered = render(scene, dpi)
    deg = pick_degradation(rng, degrade_share)
    if look is not None and look.scan_threshold:
        deg = replace(deg, scan_threshold=scan_threshold(look))
    if deg.any:
        rendered = degrade(rendered, deg, rng)
    return SynthDrawing(name, part_name, sheet, dpi, font, deg, scene, rendered, annotations, title_fields)
