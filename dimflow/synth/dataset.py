"""Write synthetic drawings with everything each model trains on.

Layout under OUT (YOLO finds labels/ beside images/):

    images/<name>.png         the drawing (grayscale)
    truth/<name>.json         the contract's result (bbox = tight box of the callout's text ink)
    labels/<name>.txt         YOLO boxes: 0 dimension, 1 text, 2 title_block
    segmentation/<name>.png   pixel classes: 0 paper, 1 contour, 2 dimension, 3 text, 4 other
    strokes/<name>.json       vector strokes (px) with their class, and text boxes
    crops/<name>-<k>.png      callout and text crops; crops/index.jsonl holds their strings
    meta/<name>.json          generator choices (part, sheet, dpi, font, degradation)
    data.yaml                 the YOLO dataset file
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from dimflow.schema import (
    DatumSymbol,
    Dimension,
    DrawingResult,
    FeatureControlFrame,
    ImageSize,
    SurfaceFinish,
    TextItem,
    TitleBlock,
    drawing_id,
)
from dimflow.synth.generate import SynthDrawing, generate

YOLO_CLASSES = ("dimension", "text", "title_block")
# CAD-style sets (`dimflow synth --cad`) also box what is never a dimension, for a detector that learns them
YOLO_CLASSES_CAD = (*YOLO_CLASSES, "gdt", "datum", "surface_finish")
_MARKS = ("gdt", "datum", "finish")  # text-block roles inside those boxes
CROP_PAD_PX = 4


def png_bytes(img: Image.Image) -> bytes:
    """PNG bytes without timestamps or other varying chunks: same pixels, same bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def truth_result(d: SynthDrawing, image_bytes: bytes, source: str | None) -> DrawingResult:
    """The drawing's ground truth in the contract's shape."""
    dims, texts = [], []
    k = 0
    for block, box in zip(d.scene.texts, d.rendered.text_boxes, strict=True):
        bbox = tuple(round(v, 1) for v in box)
        if block.callout is not None:
            k += 1
            dims.append(Dimension(id=f"d{k}", bbox=bbox, confidence=1.0, **block.callout.fields()))
        elif block.role not in ("gdt", "datum", "finish"):  # those are the contract's other characteristics
            texts.append(TextItem(text=block.string, bbox=bbox, confidence=1.0))
    w, h = d.rendered.image.size
    k = w / d.scene.width  # px per sheet mm
    extra: dict = {}
    if d.annotations is not None:
        a = d.annotations

        def px(r: tuple[float, float, float, float]) -> tuple[float, ...]:
            return tuple(round(v * k, 1) for v in r)

        extra = {
            "gdt": [FeatureControlFrame(**item, bbox=px(r), confidence=1.0) for item, r in a.gdt],
            "datums": [DatumSymbol(**item, bbox=px(r), confidence=1.0) for item, r in a.datums],
            "surface_finish": [SurfaceFinish(**item, bbox=px(r), confidence=1.0) for item, r in a.finishes],
        }
        region = next((r for name, r in d.scene.regions if name == "title_block"), None)
        extra["title_block"] = TitleBlock(bbox=px(region) if region else None, fields=dict(d.title_fields))
    return DrawingResult(
        drawing_id=drawing_id(image_bytes),
        source=source,
        image=ImageSize(width=w, height=h),
        models={"generator": "dimflow-synth/1"},
        dimensions=dims,
        texts=texts,
        timings_ms={},
        **extra,
    )


def yolo_lines(d: SynthDrawing) -> list[str]:
    w, h = d.rendered.image.size
    boxes: list[tuple[int, tuple[float, float, float, float]]] = []
    for block, box in zip(d.scene.texts, d.rendered.text_boxes, strict=True):
        if d.annotations is not None and block.role in _MARKS:
            continue  # boxed whole below, as frame, datum symbol or roughness value
        cls = 0 if block.callout is not None else 1
        boxes.append((cls, box))
    k = d.rendered.image.size[0] / d.scene.width
    if d.annotations is not None:
        a = d.annotations
        for cls, items in ((3, a.gdt), (4, a.datums), (5, a.finishes)):
            boxes += [(cls, tuple(v * k for v in r)) for _, r in items]
    for name, (x0, y0, x1, y1) in d.scene.regions:
        if name == "title_block":
            boxes.append((2, (x0 * k, y0 * k, x1 * k, y1 * k)))
    lines = []
    for cls, (x0, y0, x1, y1) in boxes:
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        lines.append(f"{cls} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
    return lines


def write_drawing(d: SynthDrawing, out: Path) -> dict:
    name = d.drawing_id
    image = png_bytes(d.rendered.image)
    _write(out / "images" / f"{name}.png", image)
    result = truth_result(d, image, f"images/{name}.png")
    _write(out / "truth" / f"{name}.json", result.to_json())
    _write(out / "labels" / f"{name}.txt", "\n".join(yolo_lines(d)) + "\n")
    _write(out / "segmentation" / f"{name}.png", png_bytes(d.rendered.labels))
    strokes = {
        "classes": ["background", "contour", "dimension", "text", "other"],
        "strokes": [{"cls": c, "points": pts} for c, pts in d.rendered.strokes_px],
        "texts": [
            {"bbox": [round(v, 1) for v in b], "dimension": t.callout is not None}
            for t, b in zip(d.scene.texts, d.rendered.text_boxes, strict=True)
        ],
    }
    _write(out / "strokes" / f"{name}.json", json.dumps(strokes, separators=(",", ":")))
    crops = []
    w, h = d.rendered.image.size
    for k, (block, box) in enumerate(zip(d.scene.texts, d.rendered.text_boxes, strict=True)):
        x0, y0, x1, y1 = box
        crop_box = (
            max(0, int(x0) - CROP_PAD_PX),
            max(0, int(y0) - CROP_PAD_PX),
            min(w, int(x1) + 1 + CROP_PAD_PX),
            min(h, int(y1) + 1 + CROP_PAD_PX),
        )
        if crop_box[2] - crop_box[0] < 2 or crop_box[3] - crop_box[1] < 2:
            continue
        crop_name = f"{name}-{k:03d}.png"
        _write(out / "crops" / crop_name, png_bytes(d.rendered.image.crop(crop_box)))
        crops.append(
            {
                "crop": crop_name,
                "text": block.string,
                "kind": "dimension" if block.callout else block.role,
                "rotation": block.rotation,
            }
        )
    meta = {
        "name": name,
        "part": d.part,
        "sheet": d.sheet,
        "dpi": d.dpi,
        "font": d.font,
        "degradation": d.degradation.record(),
        "n_dimensions": len(result.dimensions),
        "crops": crops,
    }
    _write(out / "meta" / f"{name}.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return {"meta": meta, "crops": crops}


def is_cad(index: int, cad_share: float) -> bool:
    """Whether drawing `index` of a mixed split is CAD-style: `cad_share` of them, spread evenly."""
    return int((index + 1) * cad_share) > int(index * cad_share)


def write_drawings(
    out: Path,
    seed: int,
    indices: Iterable[int],
    degrade_share: float = 0.3,
    progress: Callable[[int], None] | None = None,
    cad: bool = False,
    pdf: bool = False,
    cad_share: float = 0.0,
) -> list[dict]:
    """Generate and write the drawings `indices` of `seed`; returns one record per drawing.
    `cad`: CAD-style sheets (frames, datums, roughness), or `cad_share` of them (spread evenly over
    the indices); `pdf`: also each as a vector PDF with a text layer (`pdf/<name>.pdf`; its truth
    in `truth-pdf/`, boxes at the PDF's 200 dpi render)."""
    records = []
    for i in indices:
        d = generate(seed, i, degrade_share, cad=cad or is_cad(i, cad_share))
        records.append(write_drawing(d, out))
        if pdf:
            write_pdf(d, out)
        if progress:
            progress(1)
    return records


def pdf_truth(d: SynthDrawing, data: bytes, source: str | None = None, dpi: float = 200.0) -> DrawingResult:
    """The drawing's truth for its vector PDF (`data`), boxes in the PDF's pixels at `dpi` (the
    raster's truth is at the drawing's own dpi)."""
    t = truth_result(d, data, source)
    k = dpi / d.dpi

    def scaled(items: list) -> list:
        return [x.model_copy(update={"bbox": tuple(round(v * k, 1) for v in x.bbox)}) for x in items]

    update = {key: scaled(getattr(t, key)) for key in ("dimensions", "texts", "gdt", "datums", "surface_finish")}
    if t.title_block is not None and t.title_block.bbox is not None:
        update["title_block"] = t.title_block.model_copy(
            update={"bbox": tuple(round(v * k, 1) for v in t.title_block.bbox)}
        )
    w, h = round(d.scene.width / 25.4 * dpi), round(d.scene.height / 25.4 * dpi)
    update["image"] = t.image.model_copy(update={"width": w, "height": h})
    return t.model_copy(update=update)


def write_pdf(d: SynthDrawing, out: Path, dpi: float = 200.0) -> None:
    """The drawing as CAD systems export it, and its truth in the PDF's rendered pixels."""
    from dimflow.synth.pdf import scene_pdf

    data = scene_pdf(d.scene, draw_diameter=int(d.drawing_id[-1]) % 2 == 0)
    _write(out / "pdf" / f"{d.drawing_id}.pdf", data)
    _write(out / "truth-pdf" / f"{d.drawing_id}.json", pdf_truth(d, data, f"pdf/{d.drawing_id}.pdf", dpi).to_json())


def finalize(out: Path, cad: bool = False) -> None:
    """Write the files that index the whole folder (crop strings, YOLO data file)."""
    lines = []
    for meta_path in sorted((out / "meta").glob("*.json")):
        crops = json.loads(meta_path.read_text()).get("crops", [])
        lines += [json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in crops]
    _write(out / "crops" / "index.jsonl", "".join(lines))
    _write(out / "data.yaml", _data_yaml(out, YOLO_CLASSES_CAD if cad else YOLO_CLASSES))


def write_dataset(
    out: Path,
    n: int,
    seed: int,
    start: int = 0,
    degrade_share: float = 0.3,
    progress: Callable[[int], None] | None = None,
    cad: bool = False,
    pdf: bool = False,
    cad_share: float = 0.0,
) -> list[dict]:
    """Generate drawings start..start+n-1 of `seed` into `out`; deterministic byte for byte."""
    out.mkdir(parents=True, exist_ok=True)
    records = write_drawings(out, seed, range(start, start + n), degrade_share, progress, cad=cad, pdf=pdf,
                             cad_share=cad_share)  # fmt: skip
    finalize(out, cad or cad_share > 0)
    return [r["meta"] for r in records]


def _data_yaml(out: Path, classes: tuple[str, ...] = YOLO_CLASSES) -> str:
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(classes))
    return f"# YOLO dataset written by dimflow synth\npath: .\ntrain: images\nval: images\nnames:\n{names}"
