"""Rasterise a `Scene` into a drawing image, a pixel class map and exact text-ink boxes,
then degrade a share of drawings as scanners and faxes do."""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from dimflow.synth.scene import Scene, StrokeClass, TextBlock, dash, font_for

MM_PER_INCH = 25.4


@dataclass
class Rendered:
    image: Image.Image  # "L", black ink on white paper
    labels: Image.Image  # "L", StrokeClass per pixel
    text_boxes: list[tuple[float, float, float, float]]  # tight ink box per scene.texts entry, px
    strokes_px: list[tuple[int, list[tuple[float, float]]]]  # (class, polyline) in px


def render(scene: Scene, dpi: int) -> Rendered:
    k = dpi / MM_PER_INCH
    size = (round(scene.width * k), round(scene.height * k))
    img = Image.new("L", size, 255)
    lab = Image.new("L", size, 0)
    di, dl = ImageDraw.Draw(img), ImageDraw.Draw(lab)
    strokes_px: list[tuple[int, list[tuple[float, float]]]] = []
    for s in scene.strokes:
        width = max(1, round(s.width * k))
        pieces = dash(s.points, s.pattern) if s.pattern else [s.points]
        for piece in pieces:
            pts = [(x * k, y * k) for x, y in piece]
            di.line(pts, fill=_ink(scene, s.cls), width=width, joint="curve")
            dl.line(pts, fill=int(s.cls), width=width, joint="curve")
            strokes_px.append((int(s.cls), [(round(x, 2), round(y, 2)) for x, y in pts]))
    for f in scene.fills:
        pts = [(x * k, y * k) for x, y in f.points]
        di.polygon(pts, fill=_ink(scene, f.cls))
        dl.polygon(pts, fill=int(f.cls))
    boxes = [_render_text(t, img, lab, k, scene.dimension_ink if t.callout else 0) for t in scene.texts]
    return Rendered(img, lab, boxes, strokes_px)


def _ink(scene: Scene, cls: StrokeClass) -> int:
    return scene.dimension_ink if cls == StrokeClass.DIMENSION else 0


def _render_text(
    t: TextBlock, img: Image.Image, lab: Image.Image, k: float, ink: int
) -> tuple[float, float, float, float]:
    """Draw a text block through its own patch so its ink box is exact."""
    w, h = t.size
    pad = 2.0
    patch = Image.new("L", (math.ceil((w + 2 * pad) * k), math.ceil((h + 2 * pad) * k)), 0)
    dp = ImageDraw.Draw(patch)
    for run in t.runs:
        font = font_for(t.font, run.height, k)
        dp.text(((run.x + pad) * k, (run.baseline + pad) * k), run.text, fill=255, font=font, anchor="ls")
    if t.rotation:
        patch = patch.rotate(t.rotation, expand=True)
    ox = round((t.origin[0] - pad) * k)
    oy = round((t.origin[1] - pad) * k)
    black = Image.new("L", patch.size, ink)
    img.paste(black, (ox, oy), patch)
    lab.paste(Image.new("L", patch.size, int(StrokeClass.TEXT)), (ox, oy), patch.point(lambda v: 255 if v > 96 else 0))
    bb = patch.getbbox()
    if bb is None:
        return (float(ox), float(oy), float(ox), float(oy))
    return (float(ox + bb[0]), float(oy + bb[1]), float(ox + bb[2]), float(oy + bb[3]))


# ---------------------------------------------------------------- degradations


@dataclass(frozen=True)
class Degradation:
    rotation_deg: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    jpeg_quality: int = 0
    scan_threshold: int = 0  # a 1-bit scan: ink where gray is below it (CAD-style sheets only)

    @property
    def any(self) -> bool:
        return bool(self.rotation_deg or self.blur or self.noise or self.jpeg_quality or self.scan_threshold)

    def record(self) -> dict[str, float | int]:
        """For a drawing's metadata: a field a plain drawing never sets is left out, so plain
        splits' files stay as they were."""
        kept = asdict(self)
        if not self.scan_threshold:
            del kept["scan_threshold"]
        return kept


def pick_degradation(rng: np.random.Generator, share: float) -> Degradation:
    if rng.random() >= share:
        return Degradation()
    return Degradation(
        rotation_deg=float(round(rng.uniform(-1.0, 1.0), 2)) if rng.random() < 0.4 else 0.0,
        blur=float(round(rng.uniform(0.4, 1.0), 2)) if rng.random() < 0.5 else 0.0,
        noise=float(round(rng.uniform(4, 14), 1)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(35, 80)) if rng.random() < 0.4 else 0,
    )


def degrade(r: Rendered, deg: Degradation, rng: np.random.Generator) -> Rendered:
    """Apply a degradation; boxes follow a rotation (as the envelope of the turned box)."""
    img, lab, boxes, strokes = r.image, r.labels, r.text_boxes, r.strokes_px
    if deg.rotation_deg:
        w, h = img.size
        cx, cy = w / 2, h / 2
        img = img.rotate(deg.rotation_deg, resample=Image.Resampling.BICUBIC, center=(cx, cy), fillcolor=255)
        lab = lab.rotate(deg.rotation_deg, resample=Image.Resampling.NEAREST, center=(cx, cy), fillcolor=0)
        a = math.radians(deg.rotation_deg)

        def turn(x: float, y: float) -> tuple[float, float]:
            # PIL rotates counter-clockwise on screen (y down)
            dx, dy = x - cx, y - cy
            return (cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a))

        new_boxes = []
        for x0, y0, x1, y1 in boxes:
            pts = [turn(x, y) for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            new_boxes.append((max(0.0, min(xs)), max(0.0, min(ys)), min(w, max(xs)), min(h, max(ys))))
        boxes = new_boxes
        strokes = [(c, [tuple(round(v, 2) for v in turn(x, y)) for x, y in pts]) for c, pts in strokes]
    if deg.blur:
        img = img.filter(ImageFilter.GaussianBlur(deg.blur))
    if deg.noise:
        arr = np.asarray(img, dtype=np.float32)
        arr = arr + rng.normal(0.0, deg.noise, arr.shape).astype(np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if deg.jpeg_quality:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=deg.jpeg_quality)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    if deg.scan_threshold:  # last, as a scanner's 1-bit mode sees the page: pure black and white
        arr = np.asarray(img)
        img = Image.fromarray(np.where(arr < deg.scan_threshold, 0, 255).astype(np.uint8))
    return Rendered(img, lab, boxes, strokes)
