"""The text layer of a CAD-exported PDF page: each run of text with its exact string and box.

A drawing exported from SOLIDWORKS, Inventor or Creo as PDF carries its lettering as text, not as
pixels: reading it back is exact where OCR guesses, and costs milliseconds. Runs come from PDFium's
own segmentation (one per string it draws together: `3.40 ±0.10`, a stacked tolerance's `+0.02`
and `0.00` apart); each gets its box in the rendered page's pixels (the same frame the detector's
boxes are in) and its reading angle, so rotated callouts along a leader are known as rotated.
A scan or a raster saved as PDF has no text layer (or only a scanner's invisible OCR layer, which
is ignored): `page_text` then returns an empty list and the pipeline reads the page with OCR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from dimflow.inputs import _PDFIUM_LOCK, BadInput

_SKIP = {0x0A, 0x0D, 0x02, 0xFFFE}  # line breaks and PDFium's generated hyphens/markers


@dataclass(frozen=True)
class TextRun:
    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the page rendered at `dpi`, origin top left
    angle: int  # reading direction in degrees, counter-clockwise, to the nearest 90 (0: left to right)
    tilt: float = 0.0  # the same, exact (a callout along a leader at 45 degrees: 45.0 or 315.0)
    size: float = 0.0  # the text's height across its reading direction, in pixels


def page_text(data: bytes, page_index: int, dpi: float) -> list[TextRun] | None:
    """The runs of text on one page of a PDF, boxes in pixels at `dpi`; [] when the page has no text
    layer (a scan), None when its /Rotate is not 0 (its boxes would need turning: OCR reads it)."""
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise BadInput("corrupt", f"the PDF cannot be opened ({exc})") from None
        try:
            page = pdf[page_index]
            if page.get_rotation() % 360:
                return None
            if _scanned(page):
                return []
            return _runs(page, dpi / 72.0)
        finally:
            pdf.close()


def _scanned(page: pdfium.PdfPage) -> bool:
    """An image covers most of the page: a scan, whose text (a stamp, a header) is not the drawing's."""
    width, height = page.get_size()
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        left, bottom, right, top = obj.get_bounds()
        if (right - left) * (top - bottom) > 0.5 * width * height:
            return True
    return False


def _runs(page: pdfium.PdfPage, scale: float) -> list[TextRun]:
    _, height = page.get_size()
    tp = page.get_textpage()
    try:
        rects = [tp.get_rect(i) for i in range(tp.count_rects())]
        chars: list[list[str]] = [[] for _ in rects]
        angles: list[list[float]] = [[] for _ in rects]
        sides: list[list[float]] = [[] for _ in rects]
        inked: list[list[tuple[float, float, float, float]]] = [[] for _ in rects]  # boxes of non-space chars
        for ci in range(tp.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(tp.raw, ci)
            if code in _SKIP or code < 0x20 or pdfium_c.FPDFText_IsGenerated(tp.raw, ci) == 1:
                continue  # (a glyph the font maps to no character comes back as 0: its ink is still drawn)
            obj = pdfium_c.FPDFText_GetTextObject(tp.raw, ci)
            if obj and pdfium_c.FPDFTextObj_GetTextRenderMode(obj) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE:
                continue  # a scanner's OCR layer under its image: not what the sheet shows
            left, bottom, right, top = tp.get_charbox(ci)
            cx, cy = (left + right) / 2, (bottom + top) / 2
            for k, (rl, rb, rr, rt) in enumerate(rects):  # the run PDFium drew this character in
                if rl - 0.5 <= cx <= rr + 0.5 and rb - 0.5 <= cy <= rt + 0.5:
                    chars[k].append(chr(code))
                    if code != 0x20:
                        angles[k].append(math.degrees(pdfium_c.FPDFText_GetCharAngle(tp.raw, ci)))
                        sides[k].append(max(right - left, top - bottom))
                        inked[k].append((left, bottom, right, top))
                    else:
                        inked[k].append(None)  # type: ignore[arg-type]
                    break
    finally:
        tp.close()
    pieces = [piece for parts in zip(rects, chars, angles, sides, inked, strict=True) for piece in _split(*parts)]
    runs = []
    for rect, text, ang, side, ink in pieces:
        text = " ".join("".join(text).split())
        ink = [b for b in ink if b is not None]
        if not text or not ink:
            continue
        # the run's box around its characters, not PDFium's rectangle (which spans a trailing space)
        left, bottom = min(b[0] for b in ink), min(b[1] for b in ink)
        right, top = max(b[2] for b in ink), max(b[3] for b in ink)
        if rect[3] - rect[1] > top - bottom:  # keep the font's line height: ascenders, descenders
            bottom, top = rect[1], rect[3]
        exact = sorted(ang)[len(ang) // 2] if ang else 0.0  # PDFium measures clockwise
        tilt = round((360 - exact) % 360, 1) % 360
        angle = (360 - round(exact / 90) * 90) % 360
        box = (left * scale, (height - top) * scale, right * scale, (height - bottom) * scale)
        if angle == tilt % 360 and angle in (0, 180):
            size = (top - bottom) * scale
        elif angle == tilt % 360:
            size = (right - left) * scale
        else:  # a tilted run: its characters' boxes, corner to corner, are about the text's height
            size = 0.85 * sorted(side)[len(side) // 2] * scale
        runs.append(TextRun(text=text, box=tuple(round(v, 1) for v in box), angle=angle, tilt=tilt,
                            size=round(size, 1)))  # fmt: skip
    return runs


def _split(rect, chars: list[str], angles: list[float], sides: list[float], ink: list):
    """One PDFium run cut where its characters stand apart by more than a character's height: the
    gap holds a drawn sign (a stroked Ø between `(` and `68)`) or parts that are set apart."""
    if not angles or any(abs(a - angles[0]) > 1 for a in angles) or round(angles[0]) % 90:
        return [(rect, chars, angles, sides, ink)]
    clockwise = round(angles[0]) % 360

    def gap(a, b) -> float:  # along the reading direction, in points
        if clockwise == 0:
            return b[0] - a[2]
        if clockwise == 270:  # reads upward
            return b[1] - a[3]
        if clockwise == 90:
            return a[1] - b[3]
        return a[0] - b[2]

    cuts, prev, k, spaced = [], None, 0, False
    for i, (_c, box) in enumerate(zip(chars, ink, strict=True)):
        if box is None:
            spaced = True  # a written space: the gap is the typesetter's, not a drawn sign's
            continue
        if prev is not None and not spaced and gap(prev, box) > 0.8 * max(sides[k - 1], sides[k]):
            cuts.append(i)
        prev, k, spaced = box, k + 1, False
    if not cuts:
        return [(rect, chars, angles, sides, ink)]
    out, start, kstart = [], 0, 0
    for cut in [*cuts, len(chars)]:
        piece_ink = ink[start:cut]
        n = sum(b is not None for b in piece_ink)
        out.append((rect, chars[start:cut], angles[kstart : kstart + n], sides[kstart : kstart + n], piece_ink))
        start, kstart = cut, kstart + n
    return out
