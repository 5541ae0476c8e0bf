"""Frames on pages read by OCR (scans, rasters): a reading inside a drawn feature control frame or
datum box is never a dimension, whatever the detector called it.

The detector was trained on sheets without frames, so on a CAD sheet it boxes a frame's tolerance
(`0.05`) or a datum letter as a callout, and the callout reader, which never saw a letter alone,
reads `A` as `4`. The drawn lines settle it: the same frame finding as the text-layer path
(`dimflow.sheet`), the symbol cell recognised from its pixels, and the frame's other cells read
by the general text engine (which knows letters) instead of the callout reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from dimflow import gdt
from dimflow.records import Reading
from dimflow.schema import DatumSymbol, FeatureControlFrame, SurfaceFinish
from dimflow.sheet import Frame, contains, enclosing_frame, ink

ReadCells = Callable[[list[np.ndarray]], list[tuple[str, float]]]


def _centre_in(b, r) -> bool:
    cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
    return r[0] <= cx <= r[2] and r[1] <= cy <= r[3]


def sort_framed(
    gray: np.ndarray, items: list[Reading], read_cells: ReadCells
) -> tuple[list[Reading], list[FeatureControlFrame], list[DatumSymbol]]:
    """The readings that are not inside a frame, and the frames and datum symbols found."""
    mask = ink(gray)
    frames: list[Frame] = []
    for r in items:
        b = r.box
        w, h = b.x1 - b.x0, b.y1 - b.y0
        if w < h * 0.5 or h < 6 or any(_centre_in(b, f.box) for f in frames):
            continue  # vertical text is never in a frame
        f = enclosing_frame(mask, (b.x0 + 2, b.y0 + 2, b.x1 - 2, b.y1 - 2))
        if f is None and w > 2 * h:  # a box drawn around a whole frame: look from its middle out
            cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
            f = enclosing_frame(mask, (cx - 0.15 * h, cy - 0.25 * h, cx + 0.15 * h, cy + 0.25 * h), reach=2.5)
            if f is not None and (f.box[2] - f.box[0] < 0.7 * w or f.box[3] - f.box[1] < 0.8 * h):
                f = None  # the strokes of a glyph in the box, not a frame around it
        elif f is None and 0.7 * h <= w <= 1.4 * h:  # a box around a datum's square, its walls inside it
            mx, my = 0.12 * w, 0.12 * h  # clear of the walls, still outside the letter
            f = enclosing_frame(mask, (b.x0 + mx, b.y0 + my, b.x1 - mx, b.y1 - my), reach=0.5)
            fw, fh = (f.box[2] - f.box[0], f.box[3] - f.box[1]) if f is not None else (0, 0)
            if not (0.7 * w <= fw <= 1.3 * w and 0.7 * h <= fh <= 1.3 * h):
                f = None  # not this box's square: a glyph's strokes or a larger outline
        if f is None:
            continue
        fw, fh = f.box[2] - f.box[0], f.box[3] - f.box[1]
        if fh > 3.2 * h or fw > 30 * h:
            continue
        if w < 1.2 * h and (len(f.walls) > 2 or fw > 1.8 * fh):
            continue  # a tall reading (vertical text, a letter) only ever sits in a datum's square box
        # a frame found from a cell of one already found (or the same) replaces it; frames elsewhere stay
        frames = [g for g in frames if not contains(f.box, g.box, tol=3.0)] + [f]
    kept, fcfs, datums = list(items), [], []
    for f in frames:
        inside = [r for r in items if _centre_in(r.box, f.box)]
        item = _frame_item(mask, gray, f, inside, read_cells)
        if item is None:
            continue
        if isinstance(item, FeatureControlFrame):
            fcfs.append(item)
        elif isinstance(item, DatumSymbol):
            datums.append(item)
        # what was read inside stays as text (the frame's own, when it did not read), never a dimension
        as_text = [r.model_copy(update={"box": replace(r.box, cls=1), "fields": None}) for r in inside]
        kept = [r for r in kept if r not in inside] + (as_text if item == "frame" else [])
    return kept, fcfs, datums


def _crop(gray: np.ndarray, cell: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in cell)
    return gray[y0 + 3 : y1 - 2, x0 + 3 : x1 - 2]


def _frame_item(mask, gray, f: Frame, inside: list[Reading], read_cells: ReadCells):
    cells = f.cells
    box = tuple(round(float(v), 1) for v in f.box)
    fw, fh = f.box[2] - f.box[0], f.box[3] - f.box[1]
    if len(cells) == 1:
        if fw > 1.8 * fh:
            return None  # a boxed (basic) dimension: it stays one
        ((text, conf),) = read_cells([_crop(gray, cells[0])])
        label = text.strip().upper()
        if re.fullmatch(r"[A-Z]{1,2}", label):
            return DatumSymbol(label=label, bbox=box, confidence=round(min(0.95, conf), 3))
        return None
    x0, y0, x1, y1 = (int(v) for v in cells[0])
    symbol = gdt.cell_symbol(mask, cells[0])
    if symbol is None:
        return None
    square = 0.7 * (y1 - y0) <= x1 - x0 <= 1.4 * (y1 - y0)
    if any(_centre_in(r.box, cells[0]) for r in inside) and not (square and symbol[1] >= 0.7):
        return None  # the first cell holds text, not a clear symbol (the detector boxes ○ as "6"): a table
    read = read_cells([_crop(gray, c) for c in cells[1:]])
    text = _tolerance_text(read[0][0], _sign_first(mask, cells[1]))
    tol = gdt.tolerance_cell(text)
    if tol is None:
        return "frame"  # a frame whose tolerance did not read: still never a dimension
    zone, value, mods = tol
    datums = [d for t, _ in read[1:] if (d := gdt.datum_cell(_datum_text(t)))]
    name, belief = symbol
    conf = min(belief, *(c for _, c in read)) if read else belief
    written = " ".join([gdt.SYMBOL_TEXT[name], text, *datums])
    return FeatureControlFrame(text=written, characteristic=name, tolerance=value, unit="mm", zone=zone,
                               modifiers=mods, datums=datums, bbox=box, confidence=round(0.9 * conf, 3))  # fmt: skip


_CIRCLED = {"Ⓜ": "M", "@": "M", "®": "M", "の": "M", "Ⓛ": "L", "①": "L", "©": "L"}  # how OCR reads circled letters


def _tolerance_text(raw: str, sign_drawn: bool) -> str:
    """OCR's reading of a tolerance cell made parseable: the zone sign (read as Q, O or @, or not at
    all where the pixels show one), circled modifiers (read as ①, @, ...) as letters."""
    t = gdt._canon(raw).strip().replace("(M)", " M").replace("(L)", " L")
    for k, v in _CIRCLED.items():
        t = t[:1] + t[1:].replace(k, f" {v}")
    if re.match(r"^[QO@]\s*[\d.,]", t):
        t = "Ø" + t[1:].lstrip()
    elif sign_drawn and re.match(r"^[\d.,]", t):
        t = "Ø" + t
    return t


def _datum_text(raw: str) -> str:
    """`B`, `Bの` (a circled M read as junk) -> `B`, `B M`."""
    t = raw.strip().upper()
    m = re.match(r"^([A-Z]{1,2}(?:-[A-Z]{1,2})?)\s*(.*)$", t)
    if not m:
        return t
    rest = m.group(2).strip()
    if not rest:
        return m.group(1)
    mod = next((v for k, v in _CIRCLED.items() if k in rest), rest[:1] if rest[:1] in "MLS" else "M")
    return f"{m.group(1)} {mod}"


def _sign_first(mask: np.ndarray, cell: tuple[float, float, float, float]) -> bool:
    """The cell's first glyph is a diameter sign: about as wide as it is tall (digits are narrower)."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in cell)
    sub = mask[y0 + 3 : y1 - 2, x0 + 3 : x1 - 2].astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    if n <= 1:
        return False
    comps = sorted((stats[i] for i in range(1, n) if stats[i][3] >= 0.3 * sub.shape[0]), key=lambda s: s[0])
    if not comps:
        return False
    _x, _y, w, h, _ = comps[0]
    return w >= 0.8 * h and h >= 0.35 * sub.shape[0]


def sort_finishes(
    gray: np.ndarray, items: list[Reading], read_cells: ReadCells
) -> tuple[list[Reading], list[SurfaceFinish]]:
    """Roughness values the detector took for callouts: the callout reader, which never saw `Ra`,
    reads `Ra 3.2` as a radius (`R33.2`); a radius-looking callout is read again by the text
    engine, and what reads as `Ra`/`Rz` + value is a surface finish."""
    suspects = [r for r in items if r.box.cls == 0 and r.raw.strip()[:1] in "RN"
                and (r.box.x1 - r.box.x0) > 2.2 * (r.box.y1 - r.box.y0)]  # fmt: skip
    if not suspects:
        return items, []
    crops = [gray[int(r.box.y0) : int(r.box.y1) + 1, int(r.box.x0) : int(r.box.x1) + 1] for r in suspects]
    finishes, taken = [], []
    for r, (text, conf) in zip(suspects, read_cells(crops), strict=True):
        if (sf := gdt.surface_finish(text.replace("R a", "Ra").replace("R z", "Rz"))) is not None:
            parameter, value, unit = sf
            box = (round(r.box.x0, 1), round(r.box.y0, 1), round(r.box.x1, 1), round(r.box.y1, 1))
            finishes.append(SurfaceFinish(text=f"{parameter} {value:g}", parameter=parameter, value=value, unit=unit,
                                          bbox=box, confidence=round(min(0.95, conf), 3)))  # fmt: skip
            taken.append(r)
    return [r for r in items if r not in taken], finishes
