"""The merge's rules, each on its own, with expected values worked out by hand.

Page 600 x 500 px. A callout box 40 x 15 px gets a margin of 15 px (its height) for dimension
strokes; confidence = min(1, detector / 0.8) x reading x geometry (1.0 for 2+ dimension strokes,
0.8 for one, 0.5 for none, 0.7 when the page was not segmented), x 0.7 when OCR debris was trimmed.
"""

from __future__ import annotations

import json

import pytest

from dimflow.merge import confidence, dimension_support, inside, merge, stage_timings
from dimflow.records import Box, Detections, PageRef, Readings, Strokes
from dimflow.schema import validate_json
from dimflow.stages import interpret

PAGE = PageRef(drawing_id="0" * 64, source="sheet.png", page=1, n_pages=1, key="k", dpi=None, width=600, height=500)
BOX = Box(0, 100, 100, 140, 115, 0.9)  # margin 15: strokes count inside x 85..155, y 85..130
LINES_AT_BOX = [(90, 120, 150, 120, 1), (90, 100, 90, 130, 1)]  # a dimension line and an extension line


def strokes(*rows: tuple[float, float, float, float, int], elapsed_ms: float = 0.0) -> Strokes:
    return Strokes(segments=[r[:4] for r in rows], classes=[r[4] for r in rows], elapsed_ms=elapsed_ms)


def run(readings, found_boxes=(), lines=None, cached=frozenset()):
    boxes = [r.box for r in readings] + list(found_boxes)
    return merge(PAGE, Detections(boxes=boxes), Readings(items=readings), lines, {"detector": "d/1"}, cached)


# ---------------------------------------------------------------- geometry support


def test_support_counts_each_dimension_stroke_once_by_an_end_or_its_middle() -> None:
    assert dimension_support(BOX, strokes(*LINES_AT_BOX)) == 2
    assert dimension_support(BOX, strokes((60, 120, 180, 120, 1))) == 1  # only its middle (120, 120) is near
    assert dimension_support(BOX, strokes((90, 120, 95, 120, 1))) == 1  # both ends near: still one stroke


def test_support_margin_is_the_box_height_with_edges_included() -> None:
    assert dimension_support(BOX, strokes((155, 130, 200, 130, 1))) == 1  # (155, 130) is the corner
    assert dimension_support(BOX, strokes((156, 120, 200, 120, 1))) == 0  # 1 px right of the margin
    assert dimension_support(BOX, strokes((100, 131, 100, 200, 1))) == 0  # 1 px below the margin
    assert dimension_support(BOX, strokes((120, 84, 120, 40, 1))) == 0  # 1 px above the margin


def test_support_edges_on_the_top_left_count_too() -> None:
    box = Box(0, 300, 100, 340, 115, 0.9)  # x 285..355, y 85..130 with its margin
    assert dimension_support(box, strokes((285, 85, 250, 60, 1))) == 1  # the top-left corner itself
    assert dimension_support(box, strokes((284.9, 100, 250, 100, 1))) == 0
    assert dimension_support(box, strokes((300, 84.9, 300, 40, 1))) == 0


def test_support_margin_is_at_least_8_and_at_most_60_px() -> None:
    flat = Box(0, 100, 100, 140, 102, 0.9)  # 2 px tall: margin 8
    assert dimension_support(flat, strokes((148, 101, 170, 101, 1))) == 1
    assert dimension_support(flat, strokes((149, 101, 170, 101, 1))) == 0
    tall = Box(0, 100, 100, 115, 200, 0.9)  # vertical text 100 px long: margin 60, not 100
    assert dimension_support(tall, strokes((175, 150, 190, 150, 1))) == 1
    assert dimension_support(tall, strokes((176, 150, 190, 150, 1))) == 0


def test_support_ignores_strokes_of_other_classes() -> None:
    assert dimension_support(BOX, strokes(*[(*r[:4], 0) for r in LINES_AT_BOX])) == 0  # contour
    assert dimension_support(BOX, strokes(*[(*r[:4], 2) for r in LINES_AT_BOX])) == 0  # text
    assert dimension_support(BOX, strokes()) == 0


# ---------------------------------------------------------------- confidence


@pytest.mark.parametrize(
    ("det", "read", "support", "expected"),
    [
        (0.9, 0.95, 2, 0.95),  # a detector score over 0.8 counts as 1
        (0.9, 0.95, 5, 0.95),
        (0.8, 0.95, 2, 0.95),
        (0.6, 0.95, 2, 0.7125),  # 0.75 x 0.95
        (0.9, 0.95, 1, 0.76),  # x 0.8
        (0.9, 0.95, 0, 0.475),  # x 0.5
        (0.9, 0.95, None, 0.665),  # not segmented: x 0.7, never full support
        (0.7, 0.9, 1, 0.63),  # 0.875 x 0.9 x 0.8
        (0.5, 0.33333, 2, 0.2083),  # rounded to 4 places
    ],
)
def test_confidence_by_hand(det: float, read: float, support: int | None, expected: float) -> None:
    assert confidence(det, read, support) == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------- sorting out what is not a dimension


def test_a_parsed_callout_becomes_a_dimension_with_its_fields() -> None:
    result = run([interpret(BOX, "Ø12 H7", 0.95)], lines=strokes(*LINES_AT_BOX))
    (d,) = result.dimensions
    assert (d.id, d.text, d.kind, d.nominal, d.unit, d.fit, d.count) == (
        "d1",
        "Ø12 H7",
        "diameter",
        12.0,
        "mm",
        "H7",
        1,
    )
    assert (d.upper, d.lower) == (None, None)
    assert d.bbox == (100, 100, 140, 115) and d.confidence == 0.95
    assert result.texts == []


def test_a_callout_that_parses_but_sits_in_the_title_block_is_text() -> None:
    title = Box(2, 0, 400, 300, 500, 0.9)
    in_title = interpret(Box(0, 50, 450, 80, 465, 0.9), "12.5", 0.9)
    assert in_title.fields is not None  # the grammar accepts it: only the title-block rule sorts it out
    result = run([in_title], found_boxes=[title], lines=strokes((40, 470, 90, 470, 1), (45, 440, 45, 480, 1)))
    assert result.dimensions == []
    assert [(t.text, t.confidence) for t in result.texts] == [("12.5", 0.27)]  # 0.9 x 0.3


def test_a_callout_in_the_title_block_ocr_found_from_its_labels_is_text() -> None:
    """On CAD sheets the detector often has no title-block box; the block found from its labels'
    cells fences its part numbers (`M4-M5` parses as a thread) all the same."""
    from dimflow.schema import TitleBlock

    lines = strokes((40, 470, 90, 470, 1), (45, 440, 45, 480, 1))
    part = interpret(Box(0, 50, 450, 80, 465, 0.9), "M5", 0.9)
    block = TitleBlock(bbox=(0, 400, 300, 500), fields={"title": "AXLE"})
    ocr = merge(PAGE, Detections(boxes=[part.box]), Readings(items=[part], title_block=block), lines, {}, frozenset())
    assert ocr.dimensions == [] and [t.text for t in ocr.texts] == ["M5"]
    outside = interpret(Box(0, 350, 450, 380, 465, 0.9), "M5", 0.9)
    kept = merge(PAGE, Detections(boxes=[outside.box]), Readings(items=[outside], title_block=block),
                 strokes((340, 470, 390, 470, 1), (345, 440, 345, 480, 1)), {}, frozenset())  # fmt: skip
    assert [d.text for d in kept.dimensions] == ["M5"]


def test_a_number_inside_a_detected_frame_datum_or_roughness_mark_is_text() -> None:
    lines = strokes((40, 470, 90, 470, 1), (45, 440, 45, 480, 1))
    for cls in (3, 4, 5):  # gdt, datum, surface_finish
        mark = Box(cls, 30, 440, 120, 480, 0.9)
        value = interpret(Box(0, 50, 450, 80, 465, 0.9), "0.2", 0.9)
        result = run([value], found_boxes=[mark], lines=lines)
        assert result.dimensions == [] and [t.text for t in result.texts] == ["0.2"]
    beside = run([interpret(Box(0, 200, 450, 230, 465, 0.9), "0.2", 0.9)], found_boxes=[Box(3, 30, 440, 120, 480, 0.9)],
                 lines=strokes((190, 470, 240, 470, 1), (195, 440, 195, 480, 1)))  # fmt: skip
    assert [d.nominal for d in beside.dimensions] == [0.2]


def test_the_title_block_rule_uses_the_box_centre() -> None:
    title = Box(2, 20, 400, 300, 500, 0.9)
    assert inside(Box(0, 290, 390, 310, 410, 0.9), title)  # centre (300, 400) on the top-right corner
    assert inside(Box(0, 10, 490, 30, 510, 0.9), title)  # centre (20, 500) on the bottom-left corner
    assert not inside(Box(0, 290, 380, 312, 410, 0.9), title)  # centre (301, 395)
    assert not inside(Box(0, 9, 440, 30, 460, 0.9), title)  # centre (19.5, 450): left of it, level with it
    assert not inside(Box(0, 140, 290, 160, 310, 0.9), title)  # centre (150, 300): above it, in line with it
    assert not inside(Box(0, 140, 495, 160, 506, 0.9), title)  # centre (150, 500.5): just below it
    lines = strokes((280, 385, 320, 385, 1), (285, 375, 285, 420, 1))
    result = run([interpret(Box(0, 290, 380, 312, 410, 0.9), "25", 0.9)], found_boxes=[title], lines=lines)
    assert [d.text for d in result.dimensions] == ["25"]


def test_an_unparsed_callout_is_text_at_three_tenths_belief() -> None:
    result = run([interpret(BOX, " NOTE 3 ", 0.9)], lines=strokes(*LINES_AT_BOX))
    assert result.dimensions == []
    assert [(t.text, t.confidence) for t in result.texts] == [("NOTE 3", 0.27)]
    finer = run([interpret(BOX, "NOTE 3", 0.12345)], lines=strokes(*LINES_AT_BOX))
    assert [t.confidence for t in finer.texts] == [0.037]  # 0.037035 to 4 places


def test_general_text_keeps_its_belief_and_empty_readings_are_dropped() -> None:
    text = interpret(Box(1, 10, 10, 90, 25, 0.8), "MATERIAL: AL 6061", 0.8)
    blank = interpret(Box(1, 10, 30, 90, 45, 0.8), "  ", 0.8)
    blank_callout = interpret(Box(0, 10, 50, 90, 65, 0.8), "", 0.8)
    result = run([text, blank, blank_callout])
    assert [(t.text, t.confidence) for t in result.texts] == [("MATERIAL: AL 6061", 0.8)]


def test_a_weak_reading_with_no_dimension_lines_is_text_at_half_belief() -> None:
    weak = interpret(BOX, "R6", 0.4)
    after = interpret(Box(0, 400, 390, 440, 405, 0.9), "25", 0.9)  # the readings after it are still merged
    result = run([weak, after], lines=strokes((400, 400, 500, 400, 1)))
    assert [d.text for d in result.dimensions] == ["25"]
    assert [(t.text, t.confidence) for t in result.texts] == [("R6", 0.2)]
    weaker = run([interpret(BOX, "R6", 0.12345)], lines=strokes())
    assert [t.confidence for t in weaker.texts] == [0.0617]  # 0.061725 to 4 places


def test_a_weak_reading_needs_only_one_dimension_line_to_stay_a_dimension() -> None:
    result = run([interpret(BOX, "R6", 0.4)], lines=strokes((90, 120, 150, 120, 1)))
    assert [(d.text, d.confidence) for d in result.dimensions] == [("R6", 0.32)]  # 1 x 0.4 x 0.8


def test_a_confident_reading_with_no_dimension_lines_stays_a_dimension_at_half_geometry() -> None:
    result = run([interpret(BOX, "25", 0.5)], lines=strokes((0, 0, 0, 50, 0)))
    assert [(d.text, d.confidence) for d in result.dimensions] == [("25", 0.25)]  # 1 x 0.5 x 0.5


def test_without_segmentation_nothing_is_moved_and_geometry_is_not_assumed() -> None:
    result = run([interpret(BOX, "R6", 0.4), interpret(Box(0, 300, 100, 340, 115, 0.9), "25", 0.95)], lines=None)
    assert [(d.text, d.confidence) for d in result.dimensions] == [("R6", 0.28), ("25", 0.665)]


def test_a_repaired_reading_costs_three_tenths() -> None:
    repaired = interpret(BOX, "R6)", 0.9)
    assert repaired.repaired
    result = run([repaired], lines=strokes(*LINES_AT_BOX))
    assert [(d.text, d.confidence) for d in result.dimensions] == [("R6", 0.63)]  # 0.9 x 0.7


def test_dimensions_are_numbered_in_bands_of_50_px_then_left_to_right() -> None:
    readings = [
        interpret(Box(0, 300, 100, 340, 115, 0.9), "20", 0.9),  # band round(100/50) = 2
        interpret(Box(0, 80, 110, 120, 125, 0.9), "30", 0.9),  # band round(110/50) = 2, further left
        interpret(Box(0, 70, 130, 110, 145, 0.9), "40", 0.9),  # band round(130/50) = 3
        interpret(Box(0, 480, 30, 520, 45, 0.9), "50", 0.9),  # band 1 (clear of the sheet's zone-mark band)
    ]
    result = run(readings, lines=None)
    assert [(d.id, d.text) for d in result.dimensions] == [("d1", "50"), ("d2", "30"), ("d3", "20"), ("d4", "40")]


def test_boxes_are_reported_to_a_tenth_of_a_pixel() -> None:
    box = Box(0, 100.26, 100.34, 140.25, 115.96, 0.9)
    result = run([interpret(box, "25", 0.9), interpret(Box(1, 10.04, 9.96, 90.55, 25.66, 0.9), "NOTE", 0.9)])
    assert result.dimensions[0].bbox == (100.3, 100.3, 140.2, 116.0)  # round half to even: 140.25 -> 140.2
    assert result.texts[0].bbox == (10.0, 10.0, 90.5, 25.7)


def test_result_names_the_page_and_follows_the_contract() -> None:
    result = run([interpret(BOX, "Ø12 H7", 0.95)], lines=strokes(*LINES_AT_BOX))
    assert (result.drawing_id, result.source, result.image.width, result.image.height) == (
        "0" * 64,
        "sheet.png",
        600,
        500,
    )
    assert result.models == {"detector": "d/1"}
    validate_json(json.loads(result.to_json()))


# ---------------------------------------------------------------- timings


def test_timings_are_the_stages_own_and_say_which_came_from_cache() -> None:
    found, readings = Detections(boxes=[], elapsed_ms=12.0), Readings(items=[], elapsed_ms=30.0)
    lines = strokes(elapsed_ms=5.0)
    assert stage_timings(found, readings, lines, frozenset()) == {"detect": 12.0, "read": 30.0, "segment": 5.0}
    assert stage_timings(found, readings, lines, frozenset({"detect", "segment"})) == {
        "detect_cached": 12.0, "read": 30.0, "segment_cached": 5.0,
    }  # fmt: skip
    assert stage_timings(found, readings, None, frozenset()) == {"detect": 12.0, "read": 30.0}
    result = merge(PAGE, found, readings, lines, {}, frozenset({"read"}))
    assert set(result.timings_ms) == {"detect", "read_cached", "segment", "merge"}


def test_a_text_layer_page_carries_its_characteristics_and_inches_from_its_title_block() -> None:
    from dimflow.schema import DatumSymbol, FeatureControlFrame, TitleBlock

    frame = FeatureControlFrame(text="⌖ Ø0.1 A", characteristic="position", tolerance=0.1, zone="diameter",
                                datums=["A"], bbox=(10, 10, 90, 30), confidence=0.95)  # fmt: skip
    readings = Readings(items=[interpret(BOX, ".250", 0.97), interpret(Box(0, 300, 100, 340, 115, 1.0), "30°", 0.97)],
                        source="pdf_text", gdt=[frame], datums=[DatumSymbol(label="A", bbox=(5, 5, 9, 9))],
                        title_block=TitleBlock(bbox=(0, 400, 600, 500), fields={"units": "in"}))  # fmt: skip
    title = Box(2, 0, 0, 600, 500, 0.9)  # a detector box over everything: not used on a text-layer page
    result = merge(PAGE, Detections(boxes=[title]), readings, strokes(*LINES_AT_BOX), {}, frozenset())
    assert [(d.nominal, d.unit) for d in result.dimensions] == [(0.25, "in"), (30.0, "deg")]
    assert result.text_source == "pdf_text" and result.gdt[0].id == "g1" and result.datums[0].label == "A"
    assert result.title_block.fields == {"units": "in"}
    validate_json(json.loads(result.to_json()))


def test_a_text_layer_callout_without_dimension_lines_is_barely_doubted() -> None:
    """Exact strings: the segmenter's missing strokes cost 5%, not half (an OCR reading's)."""
    reading = interpret(BOX, "12.5", 0.97)
    ocr = merge(PAGE, Detections(boxes=[BOX]), Readings(items=[reading]), strokes(), {}, frozenset())
    text = merge(
        PAGE, Detections(boxes=[BOX]), Readings(items=[reading], source="pdf_text"), strokes(), {}, frozenset()
    )
    assert ocr.dimensions[0].confidence == round(min(1.0, 0.9 / 0.8) * 0.97 * 0.5, 4)
    assert text.dimensions[0].confidence == round(0.97 * 0.95, 4)


def test_a_border_zone_mark_read_as_a_callout_is_text_on_an_ocr_page() -> None:
    from dimflow.merge import zone_mark
    from dimflow.records import Box

    w, h = 1654, 2339  # A4 portrait at 200 dpi
    assert zone_mark(Box(0, 131, 216, 149, 244, 0.9), "7", w, h)  # left band
    assert zone_mark(Box(0, 1054, 45, 1074, 74, 0.9), "2", w, h)  # top band
    assert zone_mark(Box(0, 1600, 900, 1620, 930, 0.9), "C", w, h)  # right band
    assert zone_mark(Box(0, 131, 216, 160, 244, 0.9), "12", w, h)
    assert not zone_mark(Box(0, 800, 900, 820, 930, 0.9), "7", w, h)  # inside the drawing: a dimension 7
    assert not zone_mark(Box(0, 131, 216, 190, 244, 0.9), "7.5", w, h)  # not one or two letters or digits
    assert not zone_mark(Box(0, 131, 216, 190, 244, 0.9), "Ø5", w, h)
