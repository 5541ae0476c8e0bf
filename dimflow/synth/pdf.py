"""A synthetic scene as a vector PDF, the way CAD systems export sheets: lines as paths, lettering
as real text in an embedded font (so the PDF has a text layer), and, like SOLIDWORKS, the diameter
sign optionally stroked as a circle and a slash instead of written. The truth is the scene's own:
boxes are the raster render's ink boxes scaled to the PDF's render dpi.
"""

from __future__ import annotations

import ctypes
import io
import math
from functools import cache

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from dimflow.synth.scene import Scene, StrokeClass, TextBlock, cap_ratio, dash, font_path, measure

PT_PER_MM = 72 / 25.4


@cache
def _font_bytes(name: str) -> bytes:
    return font_path(name).read_bytes()


def scene_pdf(scene: Scene, draw_diameter: bool = True) -> bytes:
    """The scene as a one-page vector PDF (A-size sheet in points)."""
    from dimflow.inputs import _PDFIUM_LOCK

    with _PDFIUM_LOCK:
        pdf = pdfium.PdfDocument.new()
        try:
            return _build(pdf, scene, draw_diameter)
        finally:
            pdf.close()


def _build(pdf: pdfium.PdfDocument, scene: Scene, draw_diameter: bool) -> bytes:
    H = scene.height * PT_PER_MM
    page = pdf.new_page(scene.width * PT_PER_MM, H)
    fonts: dict[str, ctypes.c_void_p] = {}
    keep: list[object] = []  # font data must outlive the document's save

    def pt(x: float, y: float) -> tuple[float, float]:
        return x * PT_PER_MM, H - y * PT_PER_MM

    def gray(cls: StrokeClass | None) -> int:
        return scene.dimension_ink if cls == StrokeClass.DIMENSION else 0

    def path(points: list[tuple[float, float]], width: float, ink: int, closed: bool = False, fill: bool = False):
        x, y = pt(*points[0])
        obj = pdfium_c.FPDFPageObj_CreateNewPath(x, y)
        for p in points[1:]:
            pdfium_c.FPDFPath_LineTo(obj, *pt(*p))
        if closed:
            pdfium_c.FPDFPath_Close(obj)
        if fill:
            pdfium_c.FPDFPageObj_SetFillColor(obj, ink, ink, ink, 255)
            pdfium_c.FPDFPath_SetDrawMode(obj, pdfium_c.FPDF_FILLMODE_WINDING, False)
        else:
            pdfium_c.FPDFPageObj_SetStrokeColor(obj, ink, ink, ink, 255)
            pdfium_c.FPDFPageObj_SetStrokeWidth(obj, max(0.1, width * PT_PER_MM))
            pdfium_c.FPDFPageObj_SetLineCap(obj, pdfium_c.FPDF_LINECAP_ROUND)
            pdfium_c.FPDFPath_SetDrawMode(obj, pdfium_c.FPDF_FILLMODE_NONE, True)
        pdfium_c.FPDFPage_InsertObject(page.raw, obj)

    for s in scene.strokes:
        for piece in dash(s.points, s.pattern) if s.pattern else [s.points]:
            if len(piece) >= 2:
                path(piece, s.width, gray(s.cls))
    for f in scene.fills:
        path(f.points, 0.0, gray(f.cls), closed=True, fill=True)

    def font(name: str) -> ctypes.c_void_p:
        if name not in fonts:
            data = _font_bytes(name)
            buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            keep.append(buf)
            fonts[name] = pdfium_c.FPDFText_LoadFont(pdf.raw, buf, len(data), pdfium_c.FPDF_FONT_TRUETYPE, True)
        return fonts[name]

    for t in scene.texts:
        ink = scene.dimension_ink if t.callout is not None else 0
        for run in t.runs:
            pieces = [(run.text, 0.0)]
            if draw_diameter and "Ø" in run.text and t.callout is not None:
                pieces = []
                offset = 0.0
                for k, part in enumerate(run.text.split("Ø")):
                    if k:
                        _diameter_sign(t, run.x + offset, run.baseline, run.height, path, ink)
                        offset += measure(t.font, "Ø", run.height)[0]
                    if part:
                        pieces.append((part, offset))
                    offset += measure(t.font, part, run.height)[0] if part else 0.0
            for text, dx in pieces:
                _text(page, pdf, font(t.font), t, text, run.x + dx, run.baseline, run.height, ink, pt)
    pdfium_c.FPDFPage_GenerateContent(page.raw)
    out = io.BytesIO()
    pdf.save(out)
    page.close()
    return _fixed_id(out.getvalue())


def _fixed_id(data: bytes) -> bytes:
    """PDFium writes a random file /ID and the clock's creation date: derive the ID from the content
    instead, so the same scene gives the same bytes (the dataset is deterministic byte for byte)."""
    import hashlib
    import re

    # and a fixed creation date (same length: no offsets move)
    data = re.sub(rb"/CreationDate\(D:\d{14}", b"/CreationDate(D:20260101000000", data)
    digest = hashlib.sha256(re.sub(rb"/ID\s*\[<[0-9A-Fa-f]*>\s*<[0-9A-Fa-f]*>\]", b"", data)).hexdigest()[:32].upper()
    return re.sub(rb"/ID\s*\[<([0-9A-Fa-f]*)>\s*<([0-9A-Fa-f]*)>\]",
                  lambda m: b"/ID[<" + digest.encode()[: len(m[1])] + b"><" + digest.encode()[: len(m[2])] + b">]",
                  data)  # fmt: skip


def _place(t: TextBlock, bx: float, by: float) -> tuple[float, float]:
    """Block-local mm to sheet mm (a block at 90 degrees reads bottom to top)."""
    ox, oy = t.origin
    if t.rotation == 90:
        return ox + by, oy + t.size[0] - bx
    return ox + bx, oy + by


def _text(page, pdf, font, t: TextBlock, text: str, bx: float, baseline: float, cap: float, ink: int, pt) -> None:
    em = cap / cap_ratio(t.font) * PT_PER_MM
    obj = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, em)
    wide = (pdfium_c.FPDF_WCHAR * (len(text) + 1))(*[ord(c) for c in text], 0)
    pdfium_c.FPDFText_SetText(obj, wide)
    pdfium_c.FPDFPageObj_SetFillColor(obj, ink, ink, ink, 255)
    x, y = pt(*_place(t, bx, baseline))
    a, b = (0.0, 1.0) if t.rotation == 90 else (1.0, 0.0)
    pdfium_c.FPDFPageObj_Transform(obj, a, b, -b, a, x, y)
    pdfium_c.FPDFPage_InsertObject(page.raw, obj)


def _diameter_sign(t: TextBlock, bx: float, baseline: float, cap: float, path, ink: int) -> None:
    """Ø as SOLIDWORKS strokes it: a circle about the cap height and a slash through it."""
    adv = measure(t.font, "Ø", cap)[0]
    cx, cy, r = bx + adv / 2, baseline - cap / 2, cap * 0.45
    circle = [_place(t, cx + r * math.cos(a), cy + r * math.sin(a)) for a in (i * math.pi / 12 for i in range(25))]
    path(circle, cap * 0.08, ink)
    slash = [_place(t, cx - r * 1.05, cy + r * 1.25), _place(t, cx + r * 1.05, cy - r * 1.25)]
    path(slash, cap * 0.08, ink)
