"""Reading a CAD-exported sheet from its PDF text layer instead of OCR.

The text layer gives every string exactly, but not what it is: a SOLIDWORKS sheet writes a
stacked tolerance as three or five runs (`7.50`, `+`, `-`, `0.10`, `0.20`), draws the diameter sign
and the GD&T symbols as lines, and puts zone letters, view labels, datum letters and title-block
text in the same layer as the dimensions. This module sorts the runs of one page:

1. zone marks in the border and the title block's cells (its fields: title, drawing number, ...);
2. runs inside drawn frames: feature control frames (symbol cell recognised from pixels, then
   tolerance, modifiers and datums), datum feature symbols (a boxed letter) and boxed (basic)
   dimensions;
3. roughness values (`Ra 6,5`);
4. the rest grouped into callouts in each run's own reading frame (rotated and tilted ones too):
   a value with the count, `R` and diameter sign before it and the stacked deviations or fit
   classes after it, or two stacked limits; each parsed by the dimension grammar. What the grammar
   refuses is general text.

Plain functions on numpy pixels and `TextRun`s; the read stage calls `read_sheet`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dimflow import gdt
from dimflow.grammar import GrammarError, parse
from dimflow.pdftext import TextRun
from dimflow.schema import CalloutFields, DatumSymbol, FeatureControlFrame, SurfaceFinish, TitleBlock
from dimflow.sheet import Frame, contains, enclosing_frame, has_glyph, in_zone_band, ink

Box = tuple[float, float, float, float]

# ISO 7200 / ASME Y14.1 title-block labels -> the contract's field (None: a label with no field)
TITLE_LABELS: list[tuple[str, str | None]] = [
    (r"^(DWG\.?|DRAWING)\s*(NO\.?|NUMBER|NR\.?)\s*:?", "drawing_number"),
    (r"^(PART\s*(NO\.?|NUMBER))\s*:?", "drawing_number"),
    (r"^TITLE\s*:?", "title"),
    (r"^MATERIAL\s*:?", "material"),
    (r"^SCALE\s*:?", "scale"),
    (r"^SHEET\b", "sheet"),
    (r"^REV(ISION)?\.?\s*:?", "revision"),
    (r"^(DRAWN|DRN)(\s*BY)?\s*:?$", "drawn_by"),
    (r"^DATE\s*:?$", "date"),
    (r"^(WEIGHT|MASS|FINISH|SIZE|CHK'?D|APPV'?D|MFG|Q\.?A|NAME|SIGNATURE)\s*:?$", None),
    (r"^(UNLESS OTHERWISE SPECIFIED|DIMENSIONS ARE IN|TOLERANCES|LINEAR|ANGULAR|SURFACE FINISH|"
     r"DEBURR|BREAK SHARP|EDGES|DO NOT SCALE)", None),
]  # fmt: skip
_UNITS = [(r"DIMENSIONS ARE IN (MILLIMET(ER|RE)S|MM)", "mm"), (r"DIMENSIONS ARE IN INCH", "in")]
_GENERAL_TOL = re.compile(r"\b(ISO\s*2768\s*-?\s*[fmcv]{1,2}[HKL]?|ISO\s*8015)\b", re.I)
_SIGNS = {"+", "-", "±"}


@dataclass
class Callout:
    """A callout assembled from runs: its text as the grammar reads it, its box and what it is."""

    text: str
    box: Box
    fields: CalloutFields | None
    error: str | None = None
    inferred_sign: bool = False  # the diameter sign was found drawn, not written


@dataclass
class SheetReading:
    """One page's text layer sorted into the contract's items."""

    callouts: list[Callout] = field(default_factory=list)  # parsed dimensions and refused strings
    texts: list[tuple[str, Box]] = field(default_factory=list)  # general text (notes, labels, zones)
    gdt: list[FeatureControlFrame] = field(default_factory=list)
    datums: list[DatumSymbol] = field(default_factory=list)
    surface_finish: list[SurfaceFinish] = field(default_factory=list)
    title_block: TitleBlock | None = None


def _r(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)  # type: ignore[return-value]


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _centre_in(box: Box, region: Box) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]


# ---------------------------------------------------------------- title block


def cell_at(mask: np.ndarray, box: Box, limit: int = 600, texts: Sequence[Box] = ()) -> Box | None:
    """The drawn cell a label sits in: from the label outward to the first line each way (a line
    crosses the path for 8 px either side), at most `limit` px. A glyph's stem inside one of
    `texts` (the other runs on the sheet) is no line: a value beside its label in the same cell
    does not cut the cell short."""
    x0, y0, x1, y1 = (round(v) for v in box)
    h, w = mask.shape
    cy, cx = (y0 + y1) // 2, x0 + 2
    across = [t for t in texts if t[1] <= cy <= t[3] and t != box]

    def vline(x: int) -> bool:
        if any(t[0] - 1 <= x <= t[2] + 1 for t in across):
            return False
        return bool(mask[max(0, cy - 8) : cy + 9, x].all())

    def hline(y: int) -> bool:
        return bool(mask[y, max(0, cx - 8) : cx + 9].all())

    left = next((x for x in range(x0 - 2, max(0, x0 - limit), -1) if vline(x)), None)
    right = next((x for x in range(x1 + 2, min(w, x1 + limit)) if vline(x)), None)
    top = next((y for y in range(y0 - 2, max(0, y0 - limit), -1) if hline(y)), None)
    bottom = next((y for y in range(y1 + 2, min(h, y1 + limit)) if hline(y)), None)
    if left is None or right is None or top is None or bottom is None:
        return None  # open on a side: a word in the drawing (a view's "SCALE 1:2"), not a cell
    return (float(left), float(top), float(right), float(bottom))


def _next_cell_runs(runs: list[TextRun], labels: dict, mask: np.ndarray, cell: Box) -> list[TextRun]:
    """The runs in the drawn cell right of `cell`, in the same row (a row label's value)."""
    probe = (cell[2] + 3, cell[1] + 3, cell[2] + 6, cell[3] - 3)
    beside = cell_at(mask, probe, texts=[r.box for r in runs]) if probe[3] > probe[1] else None
    if beside is None or abs(beside[1] - cell[1]) > 4 or abs(beside[3] - cell[3]) > 4:
        return []  # no cell of the same row there
    return sorted((r for j, r in enumerate(runs) if j not in labels and _centre_in(r.box, beside)),
                  key=lambda r: r.box[0])  # fmt: skip


def _largest_cluster(cells: dict[int, Box], gap: float = 12.0) -> dict[int, Box]:
    """The cells that touch one another most: a title block's cells share their lines, a word that
    merely looks like a label elsewhere on the sheet stands apart."""
    keys = list(cells)
    group = {k: k for k in keys}

    def root(k: int) -> int:
        while group[k] != k:
            k = group[k]
        return k

    for a in keys:
        for b in keys:
            ca, cb = cells[a], cells[b]
            near = ca[0] - gap <= cb[2] and cb[0] - gap <= ca[2] and ca[1] - gap <= cb[3] and cb[1] - gap <= ca[3]
            if a < b and near:
                group[root(a)] = root(b)
    sizes: dict[int, int] = {}
    for k in keys:
        sizes[root(k)] = sizes.get(root(k), 0) + 1
    if not sizes:
        return {}
    best = max(sizes, key=sizes.get)
    kept = {k: cells[k] for k in keys if root(k) == best}
    while True:  # a block's parts apart from one another (SOLIDWORKS: sign-off rows, title cells) join its box
        region = _union(list(kept.values()))
        more = {k: c for k, c in cells.items() if k not in kept and region[0] - gap <= c[2] and c[0] - gap <= region[2]
                and region[1] - gap <= c[3] and c[1] - gap <= region[3]}  # fmt: skip
        if not more:
            return kept
        kept.update(more)


def _label(text: str) -> tuple[int, str | None] | None:
    up = text.upper()
    for i, (pattern, name) in enumerate(TITLE_LABELS):
        if re.match(pattern, up):
            return i, name
    return None


def title_block(runs: list[TextRun], mask: np.ndarray, hint: Box | None = None) -> tuple[TitleBlock | None, set[int]]:
    """The title block's box and fields, and which runs are in it. Found from its labels (two or
    more of them), or `hint` (the detector's title-block box) when the sheet's labels are others."""
    labels = {i: lab for i, r in enumerate(runs) if r.angle == 0 and (lab := _label(r.text)) is not None}
    boxes = [r.box for r in runs if r.angle == 0]
    cells = {i: c for i in labels if (c := cell_at(mask, runs[i].box, texts=boxes)) is not None}
    page_area = mask.shape[0] * mask.shape[1]
    cells = {i: c for i, c in cells.items() if (c[2] - c[0]) * (c[3] - c[1]) < 0.06 * page_area}
    cells = _largest_cluster(cells)
    labels = {i: lab for i, lab in labels.items() if i in cells}
    if cells and hint is not None:  # a detector box elsewhere (a revision table taken for one) is not this block
        at = _union(list(cells.values()))
        if not (hint[0] <= at[2] and at[0] <= hint[2] and hint[1] <= at[3] and at[1] <= hint[3]):
            hint = None
    if len(labels) < 2 and hint is None:
        return None, set()
    region = _union(list(cells.values()) + ([hint] if hint else [])) if cells else hint
    assert region is not None  # noqa: S101 - one of the two is set
    inside = {i for i, r in enumerate(runs) if _centre_in(r.box, region)}
    fields: dict[str, str | None] = {}
    drawn_row: tuple[float, float] | None = None
    for i, (_, name) in labels.items():
        if name is None:
            continue
        cell = cells[i]
        label_text = runs[i].text
        inline = re.sub(TITLE_LABELS[labels[i][0]][0], "", label_text.upper()).strip(" :")
        values = [r for j, r in enumerate(runs) if j != i and j not in labels and _centre_in(r.box, cell)]
        values.sort(key=lambda r: (round(r.box[1] / 20), r.box[0]))
        if inline:  # "SCALE:2:1", "SHEET 1 OF 1"
            value = label_text[len(label_text) - len(inline) :].strip()
        else:
            value = " ".join(r.text for r in values).strip()
        if not value and name == "drawn_by":  # a sign-off row (SOLIDWORKS): the name is in the next cell
            value = " ".join(r.text for r in _next_cell_runs(runs, labels, mask, cell)).strip()
            drawn_row = (cell[1], cell[3])
        if value and name not in fields:
            fields[name] = _tidy(name, value)
    date_head = next((cells[i] for i, (_, name) in labels.items() if name == "date"), None)
    if "date" not in fields and date_head is not None and drawn_row is not None:
        # a DATE column header over the sign-off rows: the drawn-by row's date
        column = (date_head[0], drawn_row[0], date_head[2], drawn_row[1])
        dates = [r.text for j, r in enumerate(runs) if j not in labels and _centre_in(r.box, column)]
        if dates:
            fields["date"] = " ".join(dates)
    everything = " ".join(runs[i].text for i in sorted(inside))
    for pattern, unit in _UNITS:
        if re.search(pattern, everything, re.I):
            fields["units"] = unit
    if m := _GENERAL_TOL.search(everything):
        fields["general_tolerance"] = " ".join(m.group(0).split())
    return TitleBlock(bbox=_r(region), fields=fields), inside


def grow_block(region: Box, boxes: Sequence[Box], mask: np.ndarray, gap: float = 12.0) -> Box:
    """The title block's region grown by every drawn cell holding one of `boxes` that shares a line
    with it (beside it within its rows, or above or below it within its columns), until none does:
    the labels' cells bound only part of a block, and its unlabelled cells (a part number, a name)
    hold what OCR would take for callouts. Cells in the border's zone band, or taller than half
    the block (a view's outline around a callout), never join."""
    h, w = mask.shape
    cells = [c for b in boxes if not _centre_in(b, region) and (c := cell_at(mask, b, limit=300, texts=boxes))]
    cells = [c for c in cells if (c[2] - c[0]) * (c[3] - c[1]) < 0.06 * w * h and not in_zone_band(c, w, h)]

    def shares_a_line(c: Box, r: Box) -> bool:
        beside = (abs(c[2] - r[0]) <= gap or abs(c[0] - r[2]) <= gap) and r[1] - gap <= c[1] and c[3] <= r[3] + gap
        over = (abs(c[3] - r[1]) <= gap or abs(c[1] - r[3]) <= gap) and r[0] - gap <= c[0] and c[2] <= r[2] + gap
        return beside or over

    grown = True
    while grown:
        grown = False
        for c in cells:
            small = c[3] - c[1] <= 0.5 * (region[3] - region[1])  # a block's row, not a view's outline
            if small and not contains(region, c) and shares_a_line(c, region):
                region, grown = _union([region, c]), True
    return _r(region)


_TABLE_HEADS = {"ZONE", "REV", "REV.", "DESCRIPTION", "DATE", "APPROVED", "ECO", "ECN", "BY", "CHANGE"}


def revision_tables(runs: list[TextRun], mask: np.ndarray) -> set[int]:
    """Runs in a revision table: a ruled header row naming three or more of its columns (ZONE, REV,
    DESCRIPTION, DATE, APPROVED; or DESCRIPTION and one more), the table's width along that row's
    line, its title above it and every row below it down to where the table's left line ends. Its
    zones (`C2`), dates and ECO numbers read like callouts; none is."""
    boxes = [r.box for r in runs if r.angle == 0]
    heads = [i for i, r in enumerate(runs) if r.angle == 0 and r.text.strip().upper() in _TABLE_HEADS]
    found: set[int] = set()
    mid = {j: (runs[j].box[1] + runs[j].box[3]) / 2 for j in heads}
    for i in heads:
        row = [j for j in heads if abs(mid[j] - mid[i]) < 6]
        names = {runs[j].text.strip().upper() for j in row}
        # one look per header row; three column names, or DESCRIPTION and one more (OCR misses some)
        if min(row) != i or not (len(names) >= 3 or ("DESCRIPTION" in names and len(names) >= 2)):
            continue
        cells = [c for j in row if (c := cell_at(mask, runs[j].box, limit=400, texts=boxes)) is not None]
        if len(cells) < 2:
            continue
        x0, top, x1, head_bottom = _union(cells)
        # the header row's ruled line runs the table's width: columns whose name was not read are in it too
        row_y = round(top)
        while x0 > 1 and mask[max(0, row_y - 1) : row_y + 2, round(x0) - 1].any():
            x0 -= 1
        while x1 < mask.shape[1] - 2 and mask[max(0, row_y - 1) : row_y + 2, round(x1) + 1].any():
            x1 += 1
        left = round(x0)
        y = round(head_bottom)
        gap = 0
        end = min(mask.shape[0] - 1, round(head_bottom + 20 * (head_bottom - top)))  # twenty rows at most
        while y < end and gap <= 2:  # down the table's left line, not into a view's line that meets it
            y += 1
            gap = 0 if mask[y, max(0, left - 1) : left + 2].any() else gap + 1
        title_room = head_bottom - top  # the "REVISIONS" row above the header
        region = (x0, top - title_room - 2, x1, float(y))
        found |= {j for j, r in enumerate(runs) if _centre_in(r.box, region)}
    return found


def _tidy(name: str, value: str) -> str:
    """One spelling for what OCR spaces loosely: `1: 5` -> `1:5`, `10F 1` -> `1 OF 1`."""
    if name == "scale":
        return re.sub(r"\s*:\s*", ":", value)
    if name == "sheet" and (m := re.fullmatch(r"(\d+)\s*[O0]F\s*(\d+)", value.strip(), re.I)):
        return f"{m[1]} OF {m[2]}"
    return value


def zone_marks(runs: list[TextRun], shape: tuple[int, int]) -> set[int]:
    """The border's zone letters and numbers: one or two characters near the sheet's edge."""
    h, w = shape
    return {i for i, r in enumerate(runs) if len(r.text) <= 2 and r.text.isalnum() and in_zone_band(r.box, w, h)}


# ---------------------------------------------------------------- frames


def _frames(runs: list[TextRun], todo: set[int], mask: np.ndarray) -> list[tuple[Frame, list[int]]]:
    found: list[Frame] = []
    for i in sorted(todo, key=lambda i: -runs[i].size):
        r = runs[i]
        if r.angle != 0 or r.tilt != 0 or r.text in _SIGNS:
            continue
        if any(_centre_in(r.box, f.box) for f in found):
            continue
        f = enclosing_frame(mask, r.box)
        if f is None:
            continue
        fw, fh = f.box[2] - f.box[0], f.box[3] - f.box[1]
        if fh > 3.2 * r.size or fw > 30 * r.size:
            continue  # a view's outline or a table, not a frame around text
        found = [g for g in found if not contains(f.box, g.box)] + [f]
    return [(f, sorted(i for i in todo if _centre_in(runs[i].box, f.box))) for f in found]


def _cell_text(runs: list[TextRun], members: list[int], cell: Box) -> tuple[str, list[TextRun]]:
    inside = sorted((runs[i] for i in members if _centre_in(runs[i].box, cell)), key=lambda r: r.box[0])
    return " ".join(r.text for r in inside), inside


def _frame_item(
    frame: Frame, members: list[int], runs: list[TextRun], mask: np.ndarray
) -> FeatureControlFrame | DatumSymbol | None:
    cells = frame.cells
    if len(cells) >= 2 and not _cell_text(runs, members, cells[0])[1]:
        symbol = gdt.cell_symbol(mask, cells[0])
        y0, y1 = int(cells[0][1]), int(cells[0][3])
        text, inside = _cell_text(runs, members, cells[1])
        if symbol is None or not inside:
            return None
        text = gdt._canon(text)
        first = inside[0]
        sign = ""
        if not text.startswith(("Ø", "SØ")) and has_glyph(
            mask, (cells[1][0] + 3, y0 + 3, first.box[0] - 1, y1 - 3), 0.72 * first.size
        ):
            sign = "Ø"
        tol = gdt.tolerance_cell(sign + text)
        if tol is None:
            return None
        datums = [d for c in cells[2:] if (d := gdt.datum_cell(_cell_text(runs, members, c)[0]))]
        zone, value, mods = tol
        name, belief = symbol
        written = " ".join([gdt.SYMBOL_TEXT[name], sign + text.replace(",", "."), *datums])
        return FeatureControlFrame(text=written, characteristic=name, tolerance=value, unit="mm", zone=zone,
                                   modifiers=mods, datums=datums, bbox=_r(frame.box),
                                   confidence=round(0.98 * belief, 3))  # fmt: skip
    text, inside = _cell_text(runs, members, cells[0])
    fw, fh = frame.box[2] - frame.box[0], frame.box[3] - frame.box[1]
    if len(cells) == 1 and re.fullmatch(r"[A-Z]{1,2}", text) and fw <= 1.8 * fh:
        return DatumSymbol(label=text, bbox=_r(frame.box), confidence=0.97)
    return None


def _symbol_cell(frame: Frame, runs: list[TextRun], members: list[int], mask: np.ndarray) -> bool:
    """The frame opens with a square cell holding no text but a symbol's ink: a feature control
    frame, even when its other cells did not read."""
    cells = frame.cells
    if len(cells) < 2 or _cell_text(runs, members, cells[0])[1]:
        return False
    x0, y0, x1, y1 = (int(v) for v in cells[0])
    if not 0.7 * (y1 - y0) <= x1 - x0 <= 1.4 * (y1 - y0):
        return False
    return gdt.cell_symbol(mask, cells[0]) is not None


def _frame_count(frame: FeatureControlFrame, callouts: list[Callout]) -> int:
    """`4x` written above a frame (the feature's size callout) counts the frame too."""
    x0, y0, x1, _ = frame.bbox
    for c in callouts:
        bx0, _, bx1, by1 = c.box
        if c.fields is not None and c.fields.count > 1 and 0 <= y0 - by1 <= 40 and bx0 < x1 and bx1 > x0:
            return c.fields.count
    return 1


# ---------------------------------------------------------------- callouts


@dataclass
class _Part:
    i: int
    run: TextRun
    u0: float
    u1: float
    v0: float
    v1: float

    @property
    def s(self) -> float:
        return max(self.v1 - self.v0, 1.0)


def _part(i: int, r: TextRun) -> _Part:
    """A run's extent along (u) and across (v, downward) its own reading direction."""
    t = math.radians(r.tilt)
    d, n = (math.cos(t), -math.sin(t)), (math.sin(t), math.cos(t))
    x0, y0, x1, y1 = r.box
    if r.tilt % 90 == 0:
        corners = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
        us = [x * d[0] + y * d[1] for x, y in corners]
        vs = [x * n[0] + y * n[1] for x, y in corners]
        return _Part(i, r, min(us), max(us), min(vs), max(vs))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    c, s = abs(math.cos(t)), abs(math.sin(t))
    size = r.size or 20.0
    length = ((x1 - x0) - size * s) / c if c >= s else ((y1 - y0) - size * c) / s
    uc, vc = cx * d[0] + cy * d[1], cx * n[0] + cy * n[1]
    return _Part(i, r, uc - length / 2, uc + length / 2, vc - size / 2, vc + size / 2)


def _slot(mask: np.ndarray, p: _Part, u0: float, u1: float) -> np.ndarray:
    """The page's ink in the reading-frame slot [u0, u1] x [v0, v1] of `p`, turned upright."""
    import cv2

    t = math.radians(p.run.tilt)
    d, n = np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])
    v0, v1 = p.v0 - 0.4 * p.s, p.v1 + 0.4 * p.s  # a drawn sign may reach past the font's box
    src = np.float32([d * u0 + n * v0, d * u1 + n * v0, d * u0 + n * v1])
    w, h = max(2, round(u1 - u0)), max(2, round(v1 - v0))
    dst = np.float32([[0, 0], [w, 0], [0, h]])
    m = cv2.getAffineTransform(src, dst)
    out = cv2.warpAffine(mask.astype(np.uint8) * 255, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return out > 0


def _diameter_drawn(mask: np.ndarray, head: _Part, left: _Part | None) -> bool:
    """A diameter sign stroked just before the value (between it and a count, if there is one)."""
    s = head.s
    start = max(head.u0 - 1.5 * s, left.u1 + 1 if left else -1e9)
    if head.u0 - start < 0.5 * s:
        return False
    slot = _slot(mask, head, start, head.u0 - 1)
    between = left is not None and start == left.u1 + 1
    return has_glyph(slot, (0, 0, slot.shape[1], slot.shape[0]), s, open_left=between)


_VALUE = re.compile(r"\d")
_COUNT = re.compile(r"^\d+\s*[xX×]$")


def _same_tilt(a: _Part, b: _Part) -> bool:
    return abs((a.run.tilt - b.run.tilt + 180) % 360 - 180) < 5


_STACKED = re.compile(r"^\(?[+\-±]?\s*(\d+([.,]\d+)?|[.,]\d+)°?\)?$|^[A-Za-z]{1,2}\d{1,2}$|^[+\-±]$")


def _follows(p: _Part, head: _Part) -> bool:
    """`p` sits where a stacked deviation or fit class of `head` is written: just after it, within
    its height, and says what such a part says (a signed number, a fit class, a sign)."""
    s = head.s
    if not _same_tilt(p, head) or _STACKED.match(p.run.text.strip()) is None:
        return False
    return (head.u1 - 0.3 * s <= p.u0 <= head.u1 + 2.0 * s and p.v1 > head.v0 - 0.45 * s
            and p.v0 < head.v1 + 0.45 * s and p.s <= 1.1 * s)  # fmt: skip


def _stacked_after(head: _Part, candidates: list[_Part]) -> list[_Part]:
    """The parts stacked after `head`; one unsigned number alone beside it is a neighbouring
    callout, not a tolerance."""
    after = [p for p in candidates if p.i != head.i and _follows(p, head)]
    if len(after) == 1 and re.fullmatch(r"\(?\d+([.,]\d+)?\)?", after[0].run.text.strip()):
        return []
    return after


def _places(text: str) -> int:
    """Decimal places of the last number in a run: two limits of one dimension are written alike."""
    nums = re.findall(r"\d+(?:[.,](\d+))?", text)
    return len(nums[-1]) if nums else -1


def _assemble(parts: list[_Part], head: _Part, free: set[int], mask: np.ndarray) -> tuple[str, list[_Part], bool]:
    """The callout around `head`: text as the grammar reads it and the parts it used."""
    s = head.s
    same = [p for p in parts if p.i in free and p.i != head.i and _same_tilt(p, head)]
    used = [head]
    after = _stacked_after(head, same)  # stacked deviations, fit classes, their signs
    # a stacked limit pair: the other value right above or below the head, aligned with it
    twin = [p for p in same if _VALUE.search(p.run.text) and _places(p.run.text) == _places(head.run.text)
            and (abs(p.u0 - head.u0) < 0.6 * s or abs(p.u1 - head.u1) < 0.6 * s)
            and (0 <= p.v0 - head.v1 < 0.6 * s or 0 <= head.v0 - p.v1 < 0.6 * s)]  # fmt: skip
    before = [p for p in same if head.u0 - 3.0 * s <= p.u1 <= head.u0 + 0.2 * s
              and p.v1 > head.v0 + 0.2 * s and p.v0 < head.v1 - 0.2 * s]  # fmt: skip
    text = head.run.text
    glyph_at = [head]  # where a drawn diameter sign would sit: before the value (either limit's)
    if twin and not after:
        other = twin[0]
        upper, lower = (other, head) if other.v0 < head.v0 else (head, other)
        text = f"{upper.run.text}/{lower.run.text}"
        used.append(other)
        glyph_at = [upper, lower]
        merged = _Part(-1, head.run, min(head.u0, other.u0), max(head.u1, other.u1), min(head.v0, other.v0),
                       max(head.v1, other.v1))  # fmt: skip
        before = [p for p in same if p.i != other.i and merged.u0 - 3.0 * s <= p.u1 <= merged.u0 + 0.2 * s
                  and p.v1 > merged.v0 + 0.2 * s and p.v0 < merged.v1 - 0.2 * s]  # fmt: skip
    elif after:
        values = sorted((p for p in after if p.run.text not in _SIGNS), key=lambda p: p.v0)
        signs = [p for p in after if p.run.text in _SIGNS]
        written = []
        for p in values:
            mid = (p.v0 + p.v1) / 2
            sign = next((g.run.text for g in signs if g.v0 - 0.3 * s <= mid <= g.v1 + 0.3 * s
                         or abs((g.v0 + g.v1) / 2 - mid) < 0.35 * s), "")  # fmt: skip
            written.append(sign + p.run.text)
        used += after
        if len(written) == 2 and all(re.fullmatch(r"[A-Za-z]{1,2}\d{1,2}", w) for w in written):
            text += " " + "/".join(written)  # stacked fit classes: H7 over k6
        elif len(written) == 2:
            text += " " + "/".join(written)
        elif written:
            text += " " + " ".join(written)
    prefix = ""
    left = None
    for p in sorted(before, key=lambda p: -p.u1):
        t = p.run.text.strip()
        if t == "(" and not prefix:  # a reference dimension's bracket, the sign drawn after it
            prefix = "("
            used.append(p)
            left = left or p
        elif t.upper() in ("R", "SR", "Ø", "SØ", "M") and not prefix.strip("("):
            prefix = t.upper() + prefix.removeprefix("(") if prefix == "(" else t.upper()
            prefix = ("(" if "(" in [q.run.text for q in used] else "") + prefix.lstrip("(")
            used.append(p)
            left = left or p
        elif _COUNT.match(t):
            prefix = t.replace(" ", "") + " " + prefix
            used.append(p)
            left = left or p
            break
        else:
            break
    inferred = False
    written = "Ø" in text or "Ø" in prefix or text[:1].isalpha()
    if not written and any(_diameter_drawn(mask, g, left) for g in glyph_at):
        prefix = prefix + "Ø"
        inferred = True
    return (prefix + text).strip(), used, inferred


def _fields(text: str) -> tuple[CalloutFields | None, str | None]:
    try:
        return CalloutFields(**parse(text).fields()), None
    except GrammarError as exc:
        return None, str(exc)


def read_sheet(runs: list[TextRun], gray: np.ndarray, title_hint: Box | None = None) -> SheetReading:
    """Sort a page's text runs into dimensions, frames, datums, finishes, title block and text."""
    mask = ink(gray)
    out = SheetReading()
    todo = set(range(len(runs)))
    zones = zone_marks(runs, gray.shape[:2])
    block, in_block = title_block(runs, mask, title_hint)
    out.title_block = block
    settled = zones | in_block | revision_tables(runs, mask)
    for i in sorted(settled & todo):
        out.texts.append((runs[i].text, runs[i].box))
    todo -= settled

    frames = []
    for frame, members in _frames(runs, todo, mask):
        item = _frame_item(frame, members, runs, mask)
        if isinstance(item, FeatureControlFrame):
            frames.append(item)
            todo -= set(members)
        elif isinstance(item, DatumSymbol):
            out.datums.append(item)
            todo -= set(members)
        elif _symbol_cell(frame, runs, members, mask):
            # a frame whose cells did not read: its text is still never a dimension
            out.texts += [(runs[i].text, runs[i].box) for i in members]
            todo -= set(members)

    for i in sorted(todo):
        r = runs[i]
        if (sf := gdt.surface_finish(r.text)) is not None:
            parameter, value, unit = sf
            out.surface_finish.append(SurfaceFinish(text=f"{parameter} {value:g}", parameter=parameter, value=value,
                                                    unit=unit, bbox=_r(r.box), confidence=0.97))  # fmt: skip
            todo.discard(i)

    parts = {i: _part(i, runs[i]) for i in todo}
    values = [p for p in parts.values() if _VALUE.search(p.run.text) and p.run.text not in _SIGNS
              and not _COUNT.match(p.run.text.strip())]  # fmt: skip
    # a value stacked after another (a deviation, a fit class) is never a callout's head
    subordinate = {q.i for p in values for q in _stacked_after(p, list(parts.values()))}
    heads = sorted((p for p in parts.values() if _VALUE.search(p.run.text) and p.run.text not in _SIGNS
                    and not _COUNT.match(p.run.text.strip()) and p.i not in subordinate),
                   key=lambda p: (-p.s, -len(p.run.text)))  # fmt: skip
    for head in heads:
        if head.i not in todo:
            continue
        text, used, inferred = _assemble(list(parts.values()), head, todo, mask)
        fields, error = _fields(text)
        if fields is None and len(used) > 1 and _fields(head.run.text)[0] is not None:
            # what was put beside it did not belong: the value stands alone (its neighbours stay free)
            text, used, inferred = head.run.text, [head], False
            fields, error = _fields(text)
        box = _union([p.run.box for p in used])
        if fields is None:  # not a dimension: the head alone is text, its neighbours stay free
            continue
        out.callouts.append(Callout(text=text, box=_r(box), fields=fields, error=error, inferred_sign=inferred))
        todo -= {p.i for p in used}
    for i in sorted(todo):
        out.texts.append((runs[i].text, runs[i].box))
    out.gdt = [f.model_copy(update={"count": _frame_count(f, out.callouts)}) for f in frames]
    return out
