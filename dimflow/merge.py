"""The merge: detections, readings and strokes of one page into the contract's result.

Each callout box with a reading the grammar accepts becomes a dimension, tied to the dimension
lines the segmenter found near it; what is not a dimension (a string the grammar refuses, text
inside the title block, a low-belief reading with no dimension lines) goes to `texts`.
"""

from __future__ import annotations

import time

import numpy as np

from dimflow.records import CLASSES, STAGES, Box, Detections, PageRef, Readings, Strokes
from dimflow.schema import Dimension, DrawingResult, ImageSize, TextItem, TitleBlock
from dimflow.sheet import in_zone_band

GEOMETRY = {0: 0.5, 1: 0.8}  # confidence factor by dimension strokes near a callout; 2 or more: 1.0
GEOMETRY_UNCHECKED = 0.7  # the page was not segmented: the geometry neither vouches nor objects
# a text-layer page's callouts are exact strings placed by their runs: the segmenter's strokes (trained on
# synthetic line weights) were little evidence against them. Measured: of 62 text-layer dimensions scored
# under 0.9 for want of strokes (real set, CAD seeds 2718 and 4711, cad_val), 61 were right
GEOMETRY_TEXT_LAYER = {0: 0.95, 1: 0.98}
REPAIRED = 0.7  # a reading that parsed only after OCR debris at its edges was trimmed
UNPARSED_CALLOUT = 0.3  # a callout box whose reading the grammar refuses, reported as text
LOW_READING = 0.5  # below this, a reading with no dimension lines near it is not trusted as a dimension
BAND_PX = 50  # dimensions are numbered in reading order, in horizontal bands this tall
MARK_CLASSES = frozenset(CLASSES.index(c) for c in ("gdt", "datum", "surface_finish"))  # never dimensions


def dimension_support(box: Box, strokes: Strokes) -> int:
    """Dimension-graphics strokes (dimension/extension lines, arrowheads, leaders) with an end or
    their middle near the box.

    A callout is written along its dimension line or at the end of a leader, so such strokes lie
    within about one text height of it: the box's height (the text's length for vertical text, whose
    dimension line runs beside it), 8 to 60 px."""
    seg = strokes.of_class("dimension")
    if len(seg) == 0:
        return 0
    m = min(max(box.y1 - box.y0, 8.0), 60.0)
    pts = np.concatenate([seg[:, :2], seg[:, 2:], (seg[:, :2] + seg[:, 2:]) / 2])
    near = (pts[:, 0] >= box.x0 - m) & (pts[:, 0] <= box.x1 + m) & (pts[:, 1] >= box.y0 - m) & (pts[:, 1] <= box.y1 + m)
    return int(near.reshape(3, -1).any(axis=0).sum())


def inside(box: Box, region: Box) -> bool:
    """The box's centre lies in `region` (edges included)."""
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return region.x0 <= cx <= region.x1 and region.y0 <= cy <= region.y1


def zone_mark(box: Box, raw: str, width: int, height: int) -> bool:
    """A border zone mark (`3`, `C`, `12`): one or two letters or digits in the sheet's outer band,
    where no dimension sits (the same rule as the text layer's `zone_marks`)."""
    text = raw.strip()
    near_edge = in_zone_band((box.x0, box.y0, box.x1, box.y1), width, height)
    return near_edge and 0 < len(text) <= 2 and text.isascii() and text.isalnum()


def confidence(det_score: float, read_conf: float, support: int | None, text_layer: bool = False) -> float:
    """The belief that the whole dimension is right: detection and reading both hold, and the
    geometry agrees (`support` None: not checked). Reading confidence is the CTC per-character
    mean, so it dominates; a detector score of 0.8 or more counts as certain."""
    factors = GEOMETRY_TEXT_LAYER if text_layer else GEOMETRY
    geometry = GEOMETRY_UNCHECKED if support is None else factors.get(support, 1.0)
    return round(min(1.0, det_score / 0.8) * read_conf * geometry, 4)


def stage_timings(found: Detections, readings: Readings, strokes: Strokes | None, cached: frozenset[str]) -> dict:
    """Each stage's own time; a stage served from cache is reported as `<stage>_cached` with the
    time it took when it was computed."""
    took = {"detect": found.elapsed_ms, "read": readings.elapsed_ms}
    if strokes is not None:
        took["segment"] = strokes.elapsed_ms
    return {(f"{stage}_cached" if stage in cached else stage): took[stage] for stage in STAGES if stage in took}


def merge(
    page: PageRef,
    found: Detections,
    readings: Readings,
    strokes: Strokes | None,
    refs: dict[str, str],
    cached: frozenset[str] = frozenset(),
) -> DrawingResult:
    """Pair each callout box with its reading's fields, tie it to its dimension lines, and sort
    out what is not a dimension into `texts`. `cached` names the stages served from cache."""
    t0 = time.perf_counter()
    # a page read from its text layer has its title block from the layer's labels and cells; the
    # detector's title-block box only fences OCR readings
    title_blocks = [b for b in found.boxes if b.cls == 2] if readings.source == "ocr" else []
    if readings.source == "ocr" and readings.title_block is not None and readings.title_block.bbox:
        # the block OCR found from its labels' drawn cells: on CAD sheets the detector (trained on
        # plain title blocks) often misses it, and its part numbers (`M4-M5`) parse as dimensions
        title_blocks.append(Box(2, *readings.title_block.bbox, score=1.0))
    # a detector that knows frames, datum symbols and roughness marks (classes 3-5) fences their
    # values on OCR pages: a number inside one is a tolerance, a datum or a roughness, never a dimension
    marks = [b for b in found.boxes if b.cls in MARK_CLASSES] if readings.source == "ocr" else []
    dims: list[Dimension] = []
    texts: list[TextItem] = []
    # a sheet whose title block says it is dimensioned in inches: its lengths are inches
    inches = readings.title_block is not None and readings.title_block.fields.get("units") == "in"
    for r in readings.items:
        b = r.box
        bbox = (round(b.x0, 1), round(b.y0, 1), round(b.x1, 1), round(b.y1, 1))
        in_title = any(inside(b, t) for t in title_blocks) or any(inside(b, m) for m in marks)
        if b.cls == 0 and readings.source == "ocr" and zone_mark(b, r.raw, page.width, page.height):
            texts.append(TextItem(text=r.raw.strip(), bbox=bbox, confidence=round(r.confidence, 4)))
            continue
        if b.cls == 0 and r.fields is not None and not in_title:
            support = dimension_support(b, strokes) if strokes is not None else None
            if support == 0 and r.confidence < LOW_READING:  # neither the geometry nor the reading vouches
                texts.append(TextItem(text=r.raw, bbox=bbox, confidence=round(r.confidence * 0.5, 4)))
                continue
            read_conf = r.confidence * (REPAIRED if r.repaired else 1.0)
            conf = confidence(b.score, read_conf, support, text_layer=readings.source == "pdf_text")
            fields = r.fields.model_dump()
            if inches and fields["unit"] == "mm":
                fields["unit"] = "in"
            dims.append(Dimension(**fields, bbox=bbox, confidence=conf))
        elif r.raw.strip():
            penalty = UNPARSED_CALLOUT if b.cls == 0 else 1.0
            texts.append(TextItem(text=r.raw.strip(), bbox=bbox, confidence=round(r.confidence * penalty, 4)))
    dims.sort(key=lambda d: (round(d.bbox[1] / BAND_PX), d.bbox[0]))  # reading order
    for i, d in enumerate(dims, 1):
        d.id = f"d{i}"
    timings = stage_timings(found, readings, strokes, cached)
    timings["merge"] = round((time.perf_counter() - t0) * 1000, 1)
    return DrawingResult(
        drawing_id=page.drawing_id,
        source=page.source,
        image=ImageSize(width=page.width, height=page.height),
        models=refs,
        dimensions=dims,
        texts=texts,
        timings_ms=timings,
        gdt=[
            g.model_copy(update={"id": f"g{i}"} | ({"unit": "in"} if inches else {}))
            for i, g in enumerate(readings.gdt, 1)
        ],
        datums=readings.datums,
        surface_finish=readings.surface_finish,
        title_block=readings.title_block or _detected_title_block(found),
        text_source=readings.source,
    )


def _detected_title_block(found: Detections) -> TitleBlock | None:
    b = found.title_box()
    if b is None:
        return None
    return TitleBlock(bbox=(round(b.x0, 1), round(b.y0, 1), round(b.x1, 1), round(b.y1, 1)))
