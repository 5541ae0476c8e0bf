"""Ground truth in LabelMe JSON, the format eDOCr2 and most labelling tools use.

One file per drawing page: rectangles labelled `dimension`, `gdt`, `datum`, `surface_finish` or
`title_block`, each with the callout's text as its `description` and the contract's fields in an
`attributes` object (LabelMe keeps a shape's extra keys). `load` turns such a file into the
contract's shape (the truth half of `dimflow eval`); `shape` writes one rectangle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CATEGORIES = ("dimension", "gdt", "datum", "surface_finish", "title_block")
_KEYS = {"dimension": "dimensions", "gdt": "gdt", "datum": "datums", "surface_finish": "surface_finish"}


class LabelError(ValueError):
    """A LabelMe file this project cannot read as truth, with the reason."""


def is_labelme(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("shapes"), list) and "imageWidth" in doc


def shape(category: str, box: tuple[float, float, float, float], text: str = "", **attributes: Any) -> dict:
    """One LabelMe rectangle carrying a contract item."""
    if category not in CATEGORIES:
        raise LabelError(f"unknown category {category!r} (one of {', '.join(CATEGORIES)})")
    x0, y0, x1, y1 = (round(float(v), 1) for v in box)
    return {"label": category, "points": [[x0, y0], [x1, y1]], "group_id": None, "description": text,
            "shape_type": "rectangle", "flags": {}, "attributes": attributes}  # fmt: skip


def document(image_path: str, width: int, height: int, shapes: list[dict], **meta: Any) -> dict:
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": height, "imageWidth": width, **meta}  # fmt: skip


def _box(s: dict, where: str) -> list[float]:
    pts = s.get("points")
    if s.get("shape_type", "rectangle") not in ("rectangle", "polygon") or not pts or len(pts) < 2:
        raise LabelError(f"{where}: a {s.get('shape_type')} shape; truth needs rectangles (or polygons)")
    xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
    return [min(xs), min(ys), max(xs), max(ys)]


def to_truth(doc: dict, where: str = "labels") -> dict:
    """A LabelMe document as the contract's lists (`dimensions`, `gdt`, `datums`,
    `surface_finish`, `title_block`); shapes of other labels (free text) are ignored."""
    out: dict[str, Any] = {"dimensions": [], "gdt": [], "datums": [], "surface_finish": [], "title_block": None,
                           "image": {"width": doc["imageWidth"], "height": doc["imageHeight"]}}  # fmt: skip
    for i, s in enumerate(doc["shapes"]):
        label = s.get("label")
        at = f"{where}: shape {i} ({label})"
        attrs = dict(s.get("attributes") or {})
        if label == "title_block":
            out["title_block"] = {"bbox": _box(s, at), "fields": attrs.get("fields", {})}
            continue
        if label not in _KEYS:
            continue
        item = {"text": s.get("description", ""), **attrs, "bbox": _box(s, at)}
        if label == "dimension":
            missing = {"kind", "nominal"} - item.keys()
            if missing:
                raise LabelError(f"{at}: attributes lack {', '.join(sorted(missing))}")
            for k, v in (("upper", None), ("lower", None), ("fit", None), ("count", 1), ("unit", "mm")):
                item.setdefault(k, v)
        elif label == "gdt" and not {"characteristic", "tolerance"} <= item.keys():
            raise LabelError(f"{at}: a frame needs characteristic and tolerance")
        elif label == "datum":
            item.setdefault("label", item["text"])
        elif label == "surface_finish" and not {"parameter", "value"} <= item.keys():
            raise LabelError(f"{at}: a surface finish needs parameter and value")
        out[_KEYS[label]].append(item)
    return out


def load(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: not a readable JSON file ({exc})") from exc
    if not is_labelme(doc):
        raise LabelError(f"{path}: not a LabelMe file (no shapes / imageWidth)")
    return to_truth(doc, str(path))
