"""Frames on OCR-read pages: a reading inside a drawn feature control frame or datum box becomes
a frame or datum (never a dimension); a roughness value read as a radius is a surface finish;
a boxed basic dimension and vertical text beside lines stay dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from dimflow.framed import _datum_text, _tolerance_text, sort_finishes, sort_framed
from dimflow.records import Box
from dimflow.stages import interpret


def _page() -> np.ndarray:
    import cv2

    g = np.full((400, 700), 255, np.uint8)
    # a frame: symbol cell | tolerance cell | datum cell, 40 px tall, at (100, 100)
    cv2.rectangle(g, (100, 100), (330, 140), 0, 2)
    for x in (140, 280):
        cv2.line(g, (x, 100), (x, 140), 0, 2)
    cv2.line(g, (110, 130), (130, 130), 0, 2)  # ⊥: a foot
    cv2.line(g, (120, 108), (120, 130), 0, 2)  # ... and a post
    cv2.putText(g, "0.05", (160, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    cv2.putText(g, "A", (295, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    # a datum box with a letter at (500, 100)
    cv2.rectangle(g, (500, 100), (540, 140), 0, 2)
    cv2.putText(g, "B", (510, 132), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    # a boxed basic dimension at (100, 250): one wide cell
    cv2.rectangle(g, (100, 250), (200, 290), 0, 2)
    cv2.putText(g, "42.5", (115, 282), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    return g


def _reader(texts: dict[tuple[int, int], str]):
    """The text engine stand-in: reads a cell by its size (what RapidOCR would say of these crops)."""

    def read(crops):
        return [(texts.get(c.shape, "?"), 0.9) for c in crops]

    return read


def test_frame_datum_and_basic_dimension():
    g = _page()
    tol = interpret(Box(0, 160, 112, 222, 134, 0.9), "0.05", 0.95)
    datum = interpret(Box(0, 508, 112, 530, 134, 0.8), "4", 0.6)  # the callout reader's "A"-as-digit
    basic = interpret(Box(0, 113, 262, 178, 284, 0.9), "42.5", 0.95)
    cells = {(31, 135): "0.05", (31, 48): "A", (31, 37): "B"}  # crops by shape
    kept, frames, datums = sort_framed(g, [tol, datum, basic], _reader(cells))
    assert [r.raw for r in kept] == ["42.5"]
    (f,) = frames
    assert (f.characteristic, f.tolerance, f.zone, f.datums) == ("perpendicularity", 0.05, "width", ["A"])
    assert [d.label for d in datums] == ["B"]


def test_a_frame_that_does_not_read_keeps_its_text_as_text():
    g = _page()
    tol = interpret(Box(0, 160, 112, 222, 134, 0.9), "0.05", 0.95)
    kept, frames, _ = sort_framed(g, [tol], _reader({(31, 135): "%%%"}))
    assert frames == [] and [(r.raw, r.box.cls, r.fields) for r in kept] == [("0.05", 1, None)]


def test_a_roughness_value_read_as_a_radius_is_a_finish():
    g = np.full((100, 300), 255, np.uint8)
    r = interpret(Box(0, 10, 10, 130, 40, 0.9), "R33.2", 0.9)
    radius = interpret(Box(0, 150, 10, 210, 40, 0.9), "R5", 0.9)
    kept, finishes = sort_finishes(g, [r, radius], lambda crops: [("Ra 3.2", 0.95)] * len(crops))
    assert [(f.parameter, f.value) for f in finishes] == [("Ra", 3.2)] and [k.raw for k in kept] == ["R5"]


@pytest.mark.parametrize(
    ("raw", "drawn", "want"),
    [("Q0.02①", False, "Ø0.02 L"), ("0,01", True, "Ø0,01"), ("Q0.15 @", False, "Ø0.15  M"), ("0.1", False, "0.1")],
)
def test_ocr_readings_of_a_tolerance_cell(raw, drawn, want):
    assert _tolerance_text(raw, drawn) == want


def test_ocr_readings_of_a_datum_cell():
    assert (_datum_text("Bの"), _datum_text("a"), _datum_text("E M")) == ("B M", "A", "E M")


def test_a_datum_boxed_with_its_square_walls_is_a_datum():
    """The detector's box around a datum symbol often takes the square's walls in: the square is still found."""
    g = _page()
    datum = interpret(Box(0, 499, 99, 542, 142, 0.8), "4", 0.6)  # the box on the walls, not inside them
    kept, frames, datums = sort_framed(g, [datum], lambda crops: [("B", 0.9) for _ in crops])
    assert kept == [] and frames == [] and [d.label for d in datums] == ["B"]


def test_a_wider_frame_elsewhere_does_not_swallow_one_found_before():
    """A frame is replaced only by one that holds it: a wider frame lower on the sheet, spanning the
    first one's columns, is another frame (it dropped the first, whose tolerance became a dimension)."""
    import cv2

    g = _page()
    cv2.rectangle(g, (60, 320), (340, 360), 0, 2)  # ⊥ | 0.1 | A, wider than the frame above
    for x in (100, 230):
        cv2.line(g, (x, 320), (x, 360), 0, 2)
    cv2.line(g, (70, 350), (90, 350), 0, 2)
    cv2.line(g, (80, 328), (80, 350), 0, 2)
    cv2.putText(g, "0.1", (115, 352), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    cv2.putText(g, "A", (270, 352), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    upper = interpret(Box(0, 160, 112, 222, 134, 0.9), "0.05", 0.95)
    lower = interpret(Box(0, 113, 332, 161, 354, 0.9), "0.1", 0.95)
    seen = []

    def read(crops):  # the text engine stand-in: cells in the order asked, upper frame's first
        seen.extend(c.shape for c in crops)
        return [("0.05", 0.9), ("A", 0.9)] if len(seen) == 2 else [("0.1", 0.9), ("A", 0.9)]

    kept, frames, _ = sort_framed(g, [upper, lower], read)
    assert kept == []
    assert sorted(f.tolerance for f in frames) == [0.05, 0.1]


def test_a_frame_whose_lines_drift_a_few_pixels_is_followed_to_its_symbol_cell() -> None:
    """A scanned frame's top and bottom lines drift (skew, cells drawn one by one): the frame is
    followed to its first cell all the same, so the symbol is read there, not in the tolerance's."""
    import cv2

    from dimflow.sheet import enclosing_frame, ink

    g = np.full((200, 400), 255, np.uint8)
    cv2.rectangle(g, (40, 51), (100, 101), 0, 2)  # the symbol cell, a pixel lower than the rest
    cv2.rectangle(g, (100, 50), (330, 100), 0, 2)  # tolerance | datum
    cv2.line(g, (260, 50), (260, 100), 0, 2)
    cv2.putText(g, "0.15", (130, 88), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 0, 2)
    f = enclosing_frame(ink(g), (104, 60, 250, 92))
    assert f is not None and f.box[0] <= 41 and len(f.cells) == 3
