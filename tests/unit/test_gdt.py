"""GD&T pieces: every characteristic symbol is told from the others as drawn (at several sizes and
stroke widths), and from the real sheets' frames; cell texts parse into the contract's fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dimflow import gdt
from dimflow.inputs import load_pages
from dimflow.pdftext import page_text
from dimflow.sheet import enclosing_frame, ink

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


@pytest.mark.parametrize("name", sorted(gdt.SYMBOLS))
@pytest.mark.parametrize("px", [40, 64, 120])
def test_each_symbol_is_recognised_as_itself(name, px):
    import cv2

    drawn = gdt._draw(gdt.SYMBOLS[name], px=px)
    # a CAD export's line is thinner than the template's: thin it
    thin = cv2.erode(drawn.astype(np.uint8), np.ones((2, 2), np.uint8)) > 0 if px >= 64 else drawn
    got, belief = gdt.characteristic(thin)
    assert got == name and 0.5 <= belief <= 1.0


def test_an_empty_cell_has_no_characteristic():
    assert gdt.characteristic(np.zeros((30, 30), bool)) is None


def test_the_real_frames_symbols():
    data = (REAL / "Aufspannung_Ecke.PDF").read_bytes()
    gray = load_pages(data, "Aufspannung_Ecke.PDF")[0].gray
    mask = ink(gray)
    runs = {r.text: r for r in page_text(data, 0, 200) if r.text in {"0.3", "0.41", "0.12", "0.14"}}
    want = {"0.3": "flatness", "0.41": "parallelism", "0.12": "perpendicularity", "0.14": "position"}
    for text, name in want.items():
        frame = enclosing_frame(mask, runs[text].box)
        assert frame is not None and len(frame.cells) >= 2
        x0, y0, x1, y1 = (int(v) for v in frame.cells[0])
        assert gdt.characteristic(mask[y0 + 4 : y1 - 3, x0 + 4 : x1 - 3])[0] == name


def test_cell_texts():
    assert gdt.tolerance_cell("Ø0.14 M") == ("diameter", 0.14, ["M"])
    assert gdt.tolerance_cell("0,6") == ("width", 0.6, [])
    assert gdt.tolerance_cell("SØ.05 L P") == ("spherical_diameter", 0.05, ["L", "P"])
    assert gdt.tolerance_cell("A") is None
    assert gdt.datum_cell("E M") == "E(M)"
    assert gdt.datum_cell("A-B") == "A-B"
    assert gdt.datum_cell("0.1") is None
    assert gdt.surface_finish("Ra 6,5") == ("Ra", 6.5, "um")
    assert gdt.surface_finish("Rz 16 µin") == ("Rz", 16.0, "uin")
    assert gdt.surface_finish("N7") == ("N", 7.0, "um")
    assert gdt.surface_finish("R8.05") is None
