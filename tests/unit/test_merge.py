"""Merge logic that needs no model: reading repair, geometry support, confidence, sorting out text."""

from __future__ import annotations

import numpy as np
import pytest

from dimflow.detect.model import Box
from dimflow.pipeline import Reading, Strokes, confidence, dimension_support, interpret, merge
from dimflow.schema import validate_json

BOX = Box(0, 100, 100, 140, 115, 0.9)


@pytest.mark.parametrize(
    ("raw", "text", "repaired"),
    [
        ("R6", "R6", False),
        ("(25.5)", "(25.5)", False),  # a reference dimension keeps its brackets
        ("R6)", "R6", True),  # a stray bracket from the leader
        ("77 +0.2/-0.1/", "77 +0.2/-0.1", True),
        ("M3x0.5-6H-", "M3x0.5-6H", True),
        ("(Ø12", "Ø12", True),
    ],
)
def test_interpret_trims_ocr_debris_and_says_so(raw: str, text: str, repaired: bool) -> None:
    r = interpret(Reading(BOX, raw, 0.9))
    assert r.callout is not None and r.callout.fields()["text"] == text
    assert r.repaired is repaired


def test_interpret_leaves_text_that_is_no_dimension() -> None:
    r = interpret(Reading(BOX, "SECTION A-A", 0.9))
    assert r.callout is None and r.error


def _strokes(*segs: tuple[float, float, float, float]) -> Strokes:
    seg = np.array(segs, np.float32).reshape(-1, 4)
    return Strokes(seg, np.ones(len(seg), np.int64))


def test_dimension_support_counts_dimension_strokes_next_to_the_box() -> None:
    assert dimension_support(BOX, _strokes()) == 0
    near = _strokes((90, 120, 150, 120), (90, 100, 90, 130))  # dimension line under the text, an extension line
    assert dimension_support(BOX, near) == 2
    assert dimension_support(BOX, _strokes((500, 500, 600, 500))) == 0


def test_confidence_falls_with_missing_geometry_and_weak_reading() -> None:
    assert confidence(0.9, 0.99, 2) > confidence(0.9, 0.99, 0) > 0
    assert confidence(0.9, 0.5, 2) < confidence(0.9, 0.99, 2)
    assert 0.0 <= confidence(1.0, 1.0, 5) <= 1.0


def test_merge_sorts_out_unparsed_and_title_block_text() -> None:
    title = Box(2, 0, 400, 300, 500, 0.9)
    readings = [
        interpret(Reading(BOX, "Ø12 H7", 0.95)),
        interpret(Reading(Box(0, 200, 100, 240, 115, 0.9), "NOTE 3", 0.9)),  # detected as callout, is not one
        interpret(Reading(Box(0, 50, 450, 80, 465, 0.9), "1:5", 0.9)),  # in the title block
        Reading(Box(1, 10, 10, 90, 25, 0.9), "MATERIAL: AL 6061", 0.8),
    ]
    near = _strokes((90, 120, 150, 120), (90, 100, 90, 130))
    result = merge(readings, near, [r.box for r in readings] + [title], (600, 500), "0" * 64, None, {}, {})
    validate_json(result.model_dump(mode="json"))
    assert [d.text for d in result.dimensions] == ["Ø12 H7"] and result.dimensions[0].id == "d1"
    assert {t.text for t in result.texts} == {"NOTE 3", "1:5", "MATERIAL: AL 6061"}
    assert next(t for t in result.texts if t.text == "NOTE 3").confidence < 0.5


@pytest.mark.parametrize("turn", [0, 1, 2, 3])
def test_turn_box_follows_np_rot90(turn: int) -> None:
    from dimflow.pipeline import turn_box

    page = np.zeros((60, 100), np.uint8)
    page[10:20, 30:50] = 255  # a box x 30..50, y 10..20
    turned = np.rot90(page, turn)
    ys, xs = np.nonzero(turned)
    moved = turn_box(Box(0, 30, 10, 50, 20, 1.0), turn, page.shape)
    assert (moved.x0, moved.y0, moved.x1, moved.y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
