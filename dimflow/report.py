"""What a quality engineer takes away: the ballooned drawing and the inspection table.

Balloons are numbered in the result's order (`d1` is balloon 1), so the PNG, the CSV and the
JSON agree on numbering; a first-article report cites the balloon number.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dimflow.champions import models_key
from dimflow.records import PageRef, StoredResult
from dimflow.schema import DrawingResult
from dimflow.storage import Storage, StorageConflict

_FONT = Path(__file__).resolve().parent / "synth" / "fonts" / "DejaVuSans.ttf"
# balloons below this are drawn in orange: check these first. Calibrated (dimflow eval --calibration):
# at 0.9 or more, 98.9% of dimensions were fully right on the synthetic test split (348/352) and 100%
# on the real set, while the orange ones held 9 of the test split's 13 errors (11% of balloons)
LOW_CONFIDENCE = 0.9
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


_BLUE, _ORANGE, _WHITE = 254, 255, 253  # palette indices: 0..253 are the drawing's grays
_PALETTE = [round(i * 255 / 253) for i in range(254) for _ in range(3)] + [0, 90, 200, 230, 120, 0]
_GRAYS = np.round(np.arange(256) * 253 / 255).astype(np.uint8)


def balloon_png(gray: np.ndarray, result: DrawingResult) -> bytes:
    """The drawing with a numbered balloon beside each dimension, tied to it by a short leader.
    A palette PNG (254 grays, blue, orange): an A4 page at 200 dpi stores ~0.2 MB in ~40 ms, where
    RGB took 3.7 MB and ~180 ms."""
    img = Image.fromarray(_GRAYS[gray], mode="P")
    img.putpalette(_PALETTE)
    draw = ImageDraw.Draw(img)
    h, w = gray.shape
    r = max(10, round(min(w, h) / 110))
    font = ImageFont.truetype(str(_FONT), size=round(r * 1.1))
    taken: list[tuple[float, float]] = []
    for n, d in enumerate(result.dimensions, 1):
        x0, y0, x1, y1 = d.bbox
        colour = _BLUE if d.confidence >= LOW_CONFIDENCE else _ORANGE
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
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_WHITE, outline=colour, width=max(2, r // 5))
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


def result_prefix(page: PageRef, result: DrawingResult) -> str:
    """Where a page's result lives: the input's content hash, the page, the exact model versions and
    what the result says (not its timings), so an identical rerun finds its result already there."""
    models = hashlib.sha256(models_key(result.models).encode()).hexdigest()[:12]
    return f"results/{page.drawing_id}/p{page.page}-{models}-{result.content_hash()[:12]}"


def persist(store: Storage, page: PageRef, result: DrawingResult, gray: np.ndarray) -> StoredResult:
    """Result JSON, ballooned PNG and inspection CSV under `result_prefix`; nothing stored is replaced.

    The JSON goes last, so its presence says the three are complete; an identical result already
    stored (a rerun, or a concurrent run of the same drawing) is kept as it is, first timings and all."""
    base = result_prefix(page, result)
    keys = {"json": f"{base}/result.json", "png": f"{base}/balloons.png", "csv": f"{base}/inspection.csv"}
    written = not store.exists(keys["json"])
    if written:
        store.put(keys["png"], balloon_png(gray, result), "image/png")
        store.put(keys["csv"], inspection_csv(result), "text/csv")
        try:
            store.put(keys["json"], result.to_json().encode(), "application/json")
        except StorageConflict:  # the same result, stored by a concurrent run with its own timings
            if DrawingResult.model_validate_json(store.get(keys["json"])).content_hash() != result.content_hash():
                raise
            written = False
    stored = DrawingResult.model_validate_json(store.get(keys["json"])) if not written else result
    return StoredResult(page=page, objects=keys, uris={k: store.uri(v) for k, v in keys.items()},
                        n_dimensions=len(stored.dimensions), timings_ms=stored.timings_ms, written=written)  # fmt: skip


def dimension_rows(results: list[tuple[StoredResult, DrawingResult]]) -> list[dict]:
    """One row per dimension of every page, for a table a person scans (the flows' artifact)."""
    rows = []
    for done, result in results:
        for n, d in enumerate(result.dimensions, 1):
            rows.append({"drawing": done.page.source + done.page.suffix, "balloon": n, "text": d.text, "kind": d.kind,
                         "nominal": d.nominal, "upper": d.upper, "lower": d.lower, "fit": d.fit, "count": d.count,
                         "confidence": d.confidence})  # fmt: skip
    return rows


def summary_markdown(done: list[StoredResult], refs: dict[str, str], failed: dict[str, str] | None = None) -> str:
    """What a run did, for the person who opens it in the Prefect UI: pages, timings, models, failures."""
    lines = [
        f"| `{d.page.source}{d.page.suffix}` | {d.n_dimensions} | {d.timings_ms} | {'new' if d.written else 'kept'} "
        f"| {d.uris['json']} |"
        for d in done
    ]
    models = "\n".join(f"- {k}: `{v}`" for k, v in sorted(refs.items()))
    text = (
        "# Drawings processed\n\n| drawing | dimensions | timings (ms) | stored | result |\n|---|---|---|---|---|\n"
        + "\n".join(lines)
        + f"\n\n## Models\n{models}\n"
    )
    if failed:
        text += "\n## Failed\n" + "\n".join(f"- `{path}`: {why}" for path, why in failed.items()) + "\n"
    return text


def dimensions_markdown(results: list[tuple[StoredResult, DrawingResult]]) -> str:
    """`dimension_rows` as a markdown table (a service job's summary holds it in one artifact)."""
    rows = dimension_rows(results)
    if not rows:
        return "\n## Dimensions\n\nnone found\n"
    cols = list(rows[0])
    body = "\n".join("| " + " | ".join("" if r[c] is None else str(r[c]).replace("|", "\\|") for c in cols) + " |"
                     for r in rows)  # fmt: skip
    return f"\n## Dimensions\n\n| {' | '.join(cols)} |\n|{'---|' * len(cols)}\n{body}\n"
