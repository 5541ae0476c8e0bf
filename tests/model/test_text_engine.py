"""The shipped text engine (RapidOCR's recogniser) on lettering rendered here: border zone marks
read a strip at a time must read as each glyph does alone, upright (a lone 3 turned first reads W)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dimflow.champions import TextEngine
from dimflow.synth.scene import _font


@pytest.fixture(scope="module")
def engine() -> TextEngine:
    return TextEngine()


def glyph(text: str, font: str = "liberation", px: int = 20) -> np.ndarray:
    """A crop as the detector cuts one: tight at the sides, a few pixels of paper above and below."""
    f = _font(font, px)
    x0, y0, x1, y1 = f.getbbox(text)
    img = Image.new("L", (x1 - x0 + 2, y1 - y0 + 6), 255)
    ImageDraw.Draw(img).text((1 - x0, 3 - y0), text, font=f, fill=0)
    return np.asarray(img)


ZONES = list("12345678ABCDEF")


@pytest.mark.parametrize("font", ["liberation", "dejavu", "osifont"])
def test_zone_marks_read_as_their_glyphs(engine: TextEngine, font: str) -> None:
    crops = [glyph(z, font) for z in ZONES]
    got = [t for t, _ in engine.read(crops)]
    assert sum(g == z for g, z in zip(got, ZONES, strict=True)) >= len(ZONES) - 1, got


def test_tall_digits_are_not_taken_for_vertical_text(engine: TextEngine) -> None:
    crops = [glyph(d) for d in "135"]
    assert all(c.shape[0] > 1.5 * c.shape[1] for c in crops), "tall crops: the case that used to be turned"
    assert [t for t, _ in engine.read(crops)] == ["1", "3", "5"]
    assert [engine.read([c])[0][0] for c in crops] == ["1", "3", "5"]  # alone too (no strip)


def test_strips_agree_with_reading_each_glyph_alone(engine: TextEngine) -> None:
    crops = [glyph(z) for z in ZONES]
    alone = [engine._rec([c])[0][0] for c in crops]
    strips = engine._strips(crops)
    assert strips, "no strip read as one character per glyph"
    assert all(strips[i][0] == alone[i] for i in strips)


def test_words_and_vertical_text_are_read_as_before(engine: TextEngine) -> None:
    word = glyph("MATERIAL")
    vertical = np.ascontiguousarray(np.rot90(glyph("SECTION"), k=1))  # read bottom to top
    got = [t for t, _ in engine.read([word, vertical, *[glyph(z) for z in "ABC"]])]
    assert got[:2] == ["MATERIAL", "SECTION"]
    assert got[2:] == ["A", "B", "C"]


def test_a_strip_that_does_not_read_one_character_per_glyph_falls_back(engine: TextEngine) -> None:
    crops = [glyph(z) for z in "AB"] + [glyph("1:1")]  # a scale in a glyph-shaped box: not one character
    got = [t for t, _ in engine.read(crops)]
    assert got == ["A", "B", "1:1"]


LABELS = ["SCALE 1 : 2", "DETAIL F", "SECTION A-A", "ZONE", "REV", "NAME", "A", "D2"]
CALLOUTS = ["Ø24", "6x Ø17", "R6", "45°", "135.00±0.05", "(154)", "4x Ø14 THRU", "10.00 MAX", "M8"]


@pytest.mark.parametrize("font", ["adventor", "osifont"])
def test_its_second_opinion_tells_labels_from_callouts(engine: TextEngine, font: str) -> None:
    """What the callout reader doubts, the text engine reads again (`stages.not_a_callout`): section
    labels, table headings and cells, datum letters are text; a callout never is, however it reads."""
    from dimflow.stages import not_a_callout

    labels = [not_a_callout(*got) for got in engine.read([glyph(t, font, 28) for t in LABELS])]
    callouts = [not_a_callout(*got) for got in engine.read([glyph(t, font, 28) for t in CALLOUTS])]
    assert sum(labels) >= len(LABELS) - 1, list(zip(LABELS, labels, strict=True))
    assert not any(callouts), list(zip(CALLOUTS, callouts, strict=True))
