"""Import labelled real drawings into the one layout the gate, `dimflow eval` and DVC read.

Labels arrive as LabelMe files (one per drawing, `labels/<name>.json` beside `<name>.pdf`, the
format of `samples/real`) or as one COCO file (`images`, `annotations` with `bbox` [x, y, w, h],
`categories` named as LabelMe's labels, each annotation's text and contract fields in its
`attributes`). Either way the import writes `<out>/<name>.<suffix>` beside
`<out>/labels/<name>.json` in LabelMe form, after checking every label reads as contract truth:
a bad label stops the import with its file and shape, and nothing half-written is left in `out`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dimflow import labelme

DRAWING_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pdf")  # files a drawing may come in


@dataclass
class Imported:
    drawings: list[str] = field(default_factory=list)
    shapes: Counter = field(default_factory=Counter)  # label -> count

    def line(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.shapes.items()))
        return f"{len(self.drawings)} drawings ({kinds})"


def _drawing_for(label: Path, doc: dict, roots: list[Path]) -> Path:
    """The drawing a LabelMe file labels: its `imagePath` when that exists, else a file of the same stem."""
    if doc.get("imagePath"):
        named = (label.parent / doc["imagePath"]).resolve()
        if named.is_file():
            return named
    for root in roots:
        if (found := drawing_named(root, label.stem)) is not None:
            return found
    raise labelme.LabelError(f"{label}: no drawing for it (imagePath {doc.get('imagePath')!r}, "
                             f"or {label.stem}.pdf/png)")  # fmt: skip


def drawing_named(folder: Path, stem: str) -> Path | None:
    """The drawing file `stem`.<pdf|png|...> in `folder` (the first by name), or None."""
    return next((p for p in sorted(folder.iterdir())
                 if p.stem == stem and p.suffix.lower() in DRAWING_SUFFIXES and p.is_file()), None)  # fmt: skip


def _from_labelme(src: Path) -> list[tuple[Path, dict]]:
    folder = src / "labels" if (src / "labels").is_dir() else src
    pairs = []
    for label in sorted(folder.glob("*.json")):
        doc = json.loads(label.read_text(encoding="utf-8"))
        if not labelme.is_labelme(doc):
            raise labelme.LabelError(f"{label}: not a LabelMe file (no shapes / imageWidth)")
        pairs.append((_drawing_for(label, doc, [src, folder]), doc))
    return pairs


def _from_coco(path: Path) -> list[tuple[Path, dict]]:
    coco = json.loads(path.read_text(encoding="utf-8"))
    if not all(isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")):
        raise labelme.LabelError(f"{path}: not a COCO file (needs images, annotations and categories lists)")
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[Any, list[dict]] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    pairs = []
    for img in coco["images"]:
        drawing = (path.parent / img["file_name"]).resolve()
        if not drawing.is_file():
            raise labelme.LabelError(f"{path}: image {img['id']} names {img['file_name']}, which is not there")
        shapes = []
        for a in by_image.get(img["id"], []):
            x, y, w, h = (float(v) for v in a["bbox"])
            attrs = dict(a.get("attributes") or {})
            text = attrs.pop("text", a.get("text", ""))
            shapes.append(labelme.shape(names[a["category_id"]], (x, y, x + w, y + h), text, **attrs))
        meta = {"dimflow": img["dimflow"]} if "dimflow" in img else {}
        pairs.append((drawing, labelme.document(drawing.name, img["width"], img["height"], shapes, **meta)))
    return pairs


def import_labelled(src: Path, out: Path) -> Imported:
    """Check and copy a labelled set (a LabelMe folder or a COCO file) to `out`, replacing what was there."""
    pairs = _from_coco(src) if src.is_file() else _from_labelme(src)
    if not pairs:
        raise labelme.LabelError(f"{src}: no labels found (labels/*.json, *.json or a COCO file)")
    done = Imported()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (stage / "labels").mkdir()
        for drawing, doc in pairs:
            name = drawing.stem
            if name in done.drawings:
                raise labelme.LabelError(f"{src}: two drawings named {name}")
            labelme.to_truth(doc, f"{src} ({name})")  # every label must read as truth before anything lands
            shutil.copyfile(drawing, stage / f"{name}{drawing.suffix.lower()}")
            doc = doc | {"imagePath": f"../{name}{drawing.suffix.lower()}"}
            (stage / "labels" / f"{name}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
            done.drawings.append(name)
            done.shapes.update(s["label"] for s in doc["shapes"])
        if out.exists():
            old = out.with_name(f".{out.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return done
