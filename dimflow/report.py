"""What a quality engineer takes away: the ballooned drawing and the inspection table.

Balloons are numbered in the result's order (`d1` is balloon 1), so the PNG, the CSV and the
JSON agree on numbering; a first-article report cites the balloon number.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dimflow.schema import DrawingResult

_FONT = Path(__file__).resolve().parent / "synth" / "fonts" / "DejaVuSans.ttf"
LOW_CONFIDENCE = 0.5  # balloons below this are drawn in orange: check these first
CSV_COLUMNS = (
    "balloon",
    "id",
    "text",
    "kind",
    "nominal",
    "unit",
    "upper",
    "lower",
    "fit",
    "count",
    "confidence",
    "bbox",
)


def balloon_png(gray: np.ndarray, result: DrawingResult) -> bytes:
    """The drawing with a numbered balloon beside each dimension, tied to it by a short leader."""
    img = Image.fromarray(gray).convert("RGB")
    draw = ImageDraw.Draw(img)
    h, w = gray.shape
    r = max(10, round(min(w, h) / 110))
    font = ImageFont.truetype(str(_FONT), size=round(r * 1.1))
    taken: list[tuple[float, float]] = []
    for n, d in enumerate(result.dimensions, 1):
        x0, y0, x1, y1 = d.bbox
        colour = (0, 90, 200) if d.confidence >= LOW_CONFIDENCE else (230, 120, 0)
        draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), outline=colour, width=max(1, r // 6))
        # the first free spot above-left, above-right, below-left, below-right of the box
        spots = [(x0 - r * 1.6, y0 - r * 1.6), (x1 + r * 1.6, y0 - r * 1.6), (x0 - r * 1.6, y1 + r * 1.6)]
        spots.append((x1 + r * 1.6, y1 + r * 1.6))
        cx, cy = spots[0]
        for sx, sy in spots:
            sx, sy = min(max(sx, r), w - r), min(max(sy, r), h - r)
            if all((sx - tx) ** 2 + (sy - ty) ** 2 > (2.2 * r) ** 2 for tx, ty in taken):
                cx, cy = sx, sy
                break
        taken.append((cx, cy))
        near = (min(max(cx, x0), x1), min(max(cy, y0), y1))
        draw.line((cx, cy, *near), fill=colour, width=max(1, r // 6))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(255, 255, 255), outline=colour, width=max(2, r // 5))
        draw.text((cx, cy), str(n), fill=colour, font=font, anchor="mm")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # fast; these are working copies
    return buf.getvalue()


def inspection_csv(result: DrawingResult) -> bytes:
    """One row per dimension, in balloon order, ready for an inspection plan."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(CSV_COLUMNS)
    for n, d in enumerate(result.dimensions, 1):
        row = (n, d.id, d.text, str(d.kind), d.nominal, d.unit, d.upper, d.lower, d.fit, d.count, d.confidence)
        out.writerow([*("" if v is None else v for v in row), " ".join(f"{v:.1f}" for v in d.bbox)])
    return buf.getvalue().encode("utf-8")
