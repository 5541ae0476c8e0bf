"""The text layer of real CAD-exported PDFs (samples/real, shipped): exact strings, boxes in the
rendered page's pixels, reading angles; no text layer on a raster PDF; rotated pages left to OCR."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from dimflow.inputs import BadInput
from dimflow.pdftext import page_text

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"
DPI = 200


def _render(path: Path) -> np.ndarray:
    pdf = pdfium.PdfDocument(path.read_bytes())
    try:
        return pdf[0].render(scale=DPI / 72, grayscale=True).to_numpy().copy()
    finally:
        pdf.close()


@pytest.mark.parametrize(("name", "text", "angle"), [("Aufspannung.PDF", "3.40 ±0.10", 0),
                                                      ("Aufspannung.PDF", "R8.05", 90),
                                                      ("Elevator_bottom.PDF", "10.00 max.", 90),
                                                      ("Elevator_bottom.PDF", "6.00 min.", 0)])  # fmt: skip
def test_a_real_sheets_callouts_come_out_exact_with_boxes_on_their_ink(name: str, text: str, angle: int) -> None:
    path = REAL / name
    runs = page_text(path.read_bytes(), 0, DPI)
    gray = _render(path)
    h, w = gray.shape
    assert len(runs) >= 50 and all(0 <= r.box[0] < r.box[2] <= w and 0 <= r.box[1] < r.box[3] <= h for r in runs)
    run = next(r for r in runs if r.text == text)
    assert run.angle == angle
    x0, y0, x1, y1 = (round(v) for v in run.box)
    tall = (y1 - y0) > (x1 - x0)
    assert tall == (angle in (90, 270)), run
    ink = (gray < 200).mean()  # thin lettering renders light gray at 200 dpi
    assert (gray[y0:y1, x0:x1] < 200).mean() > max(0.08, 2.5 * ink), run  # the box sits on the string's ink


def test_every_real_sheet_has_a_text_layer_read_in_milliseconds() -> None:
    for path in sorted(REAL.glob("*.PDF")):
        runs = page_text(path.read_bytes(), 0, DPI)
        assert runs and sum(any(ch.isdigit() for ch in r.text) for r in runs) >= 20, path.name


def test_a_raster_pdf_has_no_text_layer_and_a_rotated_page_is_left_to_ocr() -> None:
    buf = io.BytesIO()
    Image.new("L", (800, 600), 255).save(buf, format="PDF", resolution=100.0)
    assert page_text(buf.getvalue(), 0, DPI) == []
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(595, 842).set_rotation(90)
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    assert page_text(out.getvalue(), 0, DPI) is None
    with pytest.raises(BadInput):
        page_text(b"%PDF-1.7 garbage", 0, DPI)


def test_a_scan_with_a_text_stamp_is_left_to_ocr() -> None:
    """A scanned sheet saved as PDF with a typed stamp: its text is not the drawing's."""
    import pypdfium2.raw as pdfium_c

    scan = io.BytesIO()
    Image.new("L", (800, 600), 255).save(scan, format="PDF", resolution=100.0)
    pdf = pdfium.PdfDocument(scan.getvalue())
    page = pdf[0]
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    text = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, 12.0)
    word = "APPROVED 12.5"
    buf = (pdfium_c.FPDF_WCHAR * (len(word) + 1))(*[ord(c) for c in word], 0)
    pdfium_c.FPDFText_SetText(text, buf)
    pdfium_c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 50, 50)
    pdfium_c.FPDFPage_InsertObject(page.raw, text)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    out = io.BytesIO()
    pdf.save(out)
    data = out.getvalue()
    pdf2 = pdfium.PdfDocument(data)
    assert "APPROVED" in pdf2[0].get_textpage().get_text_bounded()  # the stamp is in the text layer
    assert page_text(data, 0, DPI) == []
