"""From a drawing page to the contract's result: detect, read, segment, merge.

Plain functions over numpy arrays; the Prefect tasks in `tasks/` wrap them. Models come from the
registry by alias `champion`, are loaded once per process and reused by every later run (a
warm worker must not reload them); a champion that fails to load falls back to the newest
earlier version that loads, and the result's `models` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dimflow import registry
from dimflow.detect.model import Box
from dimflow.grammar import Callout, GrammarError, parse
from dimflow.schema import Dimension, DrawingResult, ImageSize, TextItem

log = logging.getLogger(__name__)

# bump when inference code changes what a stage returns for the same model files: cached stage
# results are keyed on it together with the input's hash and the model versions
INFERENCE_VERSION = "4"
CROP_PAD_PX = 4  # the reader was trained on crops padded this much around the text (dimflow.synth.dataset)
MODEL_KEYS = {"detector": "detector", "recognizer": "reader", "segmenter": "segmenter"}  # contract key -> ours
MODEL_CALLS = {"detect": 0, "read": 0, "segment": 0}  # how often each model ran in this process (tests, metrics)


# ---------------------------------------------------------------- models


@dataclass
class ModelSet:
    detector: Any
    reader: Any
    segmenter: Any
    text_engine: Any
    refs: dict[str, str]  # contract key -> "name/version" (+ "<key>_note" when a fallback happened)

    @property
    def key(self) -> str:
        """What a cached stage result depends on: the exact model versions."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.refs.items()) if not k.endswith("_note"))


def _load_one(key: str) -> tuple[Any, str, str | None]:
    """Load `key`'s champion; on failure the newest earlier version that loads, with a note."""
    from dimflow.lifecycle import get_kind

    kind = get_kind(key)
    champion = registry.version_by_alias(kind.name, registry.CHAMPION)
    if champion is None:
        raise registry.RegistryError(
            f"{kind.name}: no champion in the registry at {registry.tracking_uri()}; run `dimflow models bootstrap`"
        )
    try:
        reg = registry.load(kind.name, version=champion)
        return on_device(kind.load(reg.path)), reg.ref, None
    except Exception as exc:  # checksum mismatch, missing files, a model that does not build
        first = f"{kind.name}/{champion} (champion) failed to load: {type(exc).__name__}: {exc}"
        log.warning(first)
        for v in (v for v in registry.versions(kind.name) if v < champion):
            try:
                reg = registry.load(kind.name, version=v)
                model = on_device(kind.load(reg.path))
            except Exception as exc2:  # try the next older one
                log.warning("%s/%s failed to load too: %s", kind.name, v, exc2)
                continue
            note = f"fell back to {reg.ref}: {first}"
            log.warning(note)
            return model, reg.ref, note
        raise registry.RegistryError(f"{first}; no earlier version loads either") from exc


def _device_name(model: Any) -> str:
    dev = next(model.parameters()).device
    if dev.type != "cuda":
        return "cpu"
    import torch

    return f"cuda ({torch.cuda.get_device_name(dev)})"


def on_device(model: Any) -> Any:
    """Torch models go to the GPU when the worker has one; the detector picks its ONNX provider."""
    import torch

    from dimflow.compute import pick_device

    return model.to(pick_device()) if isinstance(model, torch.nn.Module) else model


class TextEngine:
    """General text (notes, title block) through RapidOCR's recogniser, whose models ship in its wheel."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        self.ref = f"rapidocr-onnxruntime/{metadata.version('rapidocr-onnxruntime')}"

    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only (the detector already boxed the text), in batches; tall crops turned upright."""
        if not crops:
            return []
        imgs = [np.dstack([np.rot90(c, k=-1) if c.shape[0] > 1.5 * c.shape[1] else c] * 3) for c in crops]
        res, _ = self.engine.text_rec(imgs)
        return [(" ".join(str(t).split()), max(0.0, min(1.0, float(score)))) for t, score in res]


def models_from(folder: Path, device: str = "cpu") -> ModelSet:
    """A model set straight from a folder of model folders (the shipped models/baseline), without
    the registry: for GPU checks and behaviour tests, not for serving."""
    from dimflow.lifecycle import get_kind

    load = {k: get_kind(k).load(folder / k) for k in MODEL_KEYS.values()}
    for k in ("reader", "segmenter"):
        load[k] = load[k].to(device)
    return ModelSet(load["detector"], load["reader"], load["segmenter"], TextEngine(), {})


_MODELS: ModelSet | None = None
_LOADED_FOR: dict[str, str] = {}  # the champions the loaded set was loaded for (fallbacks included)
_LOCK = threading.Lock()


def champion_refs() -> dict[str, str]:
    """The champions' "name/version" without loading anything (cheap: cache keys use it)."""
    from dimflow.lifecycle import bootstrap, get_kind

    if any(registry.version_by_alias(get_kind(k).name) is None for k in MODEL_KEYS.values()):
        bootstrap()
    refs = {}
    for ckey, key in MODEL_KEYS.items():
        name = get_kind(key).name
        refs[ckey] = f"{name}/{registry.version_by_alias(name)}"
    return refs


def get_models(reload: bool = False) -> ModelSet:
    """The process's models: loaded on first use (bootstrapping an empty registry), then reused.

    A new champion is picked up when the champions' aliases move (checked cheaply per call); a set
    that fell back past a broken champion is kept until they do.
    """
    global _MODELS, _LOADED_FOR
    with _LOCK:
        wanted = champion_refs()
        if _MODELS is not None and not reload and wanted == _LOADED_FOR:
            return _MODELS
        loaded: dict[str, Any] = {}
        refs: dict[str, str] = {}
        for ckey, key in MODEL_KEYS.items():
            model, ref, note = _load_one(key)
            loaded[key], refs[ckey] = model, ref
            if note:
                refs[f"{ckey}_note"] = note
        engine = TextEngine()
        refs["text"] = engine.ref
        refs["device"] = _device_name(loaded["reader"])
        _MODELS = ModelSet(loaded["detector"], loaded["reader"], loaded["segmenter"], engine, refs)
        _LOADED_FOR = wanted
        log.info("models loaded: %s", _MODELS.key)
        return _MODELS


# ---------------------------------------------------------------- stages


@dataclass
class Reading:
    """One detected box as read: raw string, parsed callout (or why not), and beliefs."""

    box: Box
    raw: str
    confidence: float
    callout: Callout | None = None
    error: str | None = None
    repaired: bool = False  # the reading parsed only after OCR debris was trimmed


_DEBRIS = ")/-.,|:"


def interpret(r: Reading) -> Reading:
    """Parse a callout reading; if it fails, trim what a recogniser leaves at the edges of a crop
    (a stray bracket, slash or hyphen from a neighbouring stroke) and try again."""
    try:
        r.callout = parse(r.raw)
        return r
    except GrammarError as exc:
        r.error = str(exc)
    text = r.raw.strip()
    candidates = []
    if text.count("(") < text.count(")"):
        candidates.append(text.replace(")", "", text.count(")") - text.count("(")))
    if text.count("(") > text.count(")"):
        candidates.append(text.replace("(", "", text.count("(") - text.count(")")))
    trimmed = text
    while trimmed and trimmed[-1] in _DEBRIS:
        trimmed = trimmed[:-1]
        candidates.append(trimmed)
    for cand in candidates:
        try:
            r.callout, r.repaired = parse(cand), True
            return r
        except GrammarError:
            continue
    return r


@dataclass
class Strokes:
    segments: np.ndarray  # (N, 4) x1, y1, x2, y2
    cls: np.ndarray  # (N,) 0 contour, 1 dimension, 2 text, 3 other


@dataclass
class StageTimer:
    ms: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, t0: float) -> None:
        self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - t0) * 1000, 1)


def crop(gray: np.ndarray, box: Box, pad: int = CROP_PAD_PX) -> np.ndarray:
    h, w = gray.shape
    x0, y0 = max(0, int(box.x0) - pad), max(0, int(box.y0) - pad)
    x1, y1 = min(w, int(box.x1) + 1 + pad), min(h, int(box.y1) + 1 + pad)
    return gray[y0:y1, x0:x1]


@dataclass
class Detections:
    """A page's boxes, in the page's own pixels, and the quarter turns (counter-clockwise) its
    sheet was scanned at: crops are turned back by that much before they are read."""

    boxes: list[Box]
    turn: int = 0


def turn_box(box: Box, turn: int, shape: tuple[int, ...]) -> Box:
    """A box on a page, carried onto the same page turned `turn` quarter turns counter-clockwise
    (np.rot90(page, turn)); `shape` is the page's (height, width) before turning."""
    x0, y0, x1, y1 = box.x0, box.y0, box.x1, box.y1
    h, w = shape[:2]
    for _ in range(turn % 4):
        x0, y0, x1, y1 = y0, w - x1, y1, w - x0
        h, w = w, h
    return Box(box.cls, x0, y0, x1, y1, box.score)


def page_turn(models: ModelSet, gray: np.ndarray, boxes: list[Box]) -> int:
    """How many quarter turns (counter-clockwise) the sheet's text shows, voted by the reader's
    orientation net over the text it found. Upright sheets carry horizontal text plus vertical
    dimensions turned one more quarter, so turn t scores p(t) + 0.5 p(t + 1); a sheet is turned
    only on a clear lead (1.2x the upright score) over at least 8 text boxes."""
    orient = getattr(models.reader, "orient", None)
    found = sorted((b for b in boxes if b.cls in (0, 1) and _usable(b)), key=lambda b: -b.score)[:150]
    if orient is None or len(found) < 8:
        return 0
    p = orient.predict([crop(gray, b) for b in found]).sum(axis=0)
    score = np.array([p[t] + 0.5 * p[(t + 1) % 4] for t in range(4)])
    best = int(score.argmax())
    return best if best != 0 and score[best] > 1.2 * score[0] else 0


def detect(models: ModelSet, gray: np.ndarray, dpi: float | None = None) -> Detections:
    return detect_many(models, [gray], [dpi])[0]


def detect_many(models: ModelSet, grays: list[np.ndarray], dpis: list[float | None] | None = None) -> list[Detections]:
    """Pages of one batch through the detector together (one onnxruntime call per sheet shape);
    a page's dpi lets the detector see sheets larger than A3 at a larger size. A sheet scanned
    sideways or upside down is detected again upright, its boxes carried back onto the page."""
    MODEL_CALLS["detect"] += len(grays)
    dpis = dpis or [None] * len(grays)
    out = []
    for gray, dpi, boxes in zip(grays, dpis, models.detector.detect_many(grays, dpis), strict=True):
        turn = page_turn(models, gray, boxes)
        if turn:
            upright = np.ascontiguousarray(np.rot90(gray, k=-turn))
            boxes = [turn_box(b, turn, upright.shape) for b in models.detector.detect(upright, dpi)]
        out.append(Detections(boxes, turn))
    return out


def _usable(b: Box) -> bool:
    return b.x1 - b.x0 >= 2 and b.y1 - b.y0 >= 2


def read(models: ModelSet, gray: np.ndarray, boxes: list[Box], turn: int = 0) -> list[Reading]:
    return read_many(models, [gray], [boxes], [turn])[0]


def read_many(
    models: ModelSet, grays: list[np.ndarray], boxes: list[list[Box]], turns: list[int] | None = None
) -> list[list[Reading]]:
    """Callout boxes through the trained reader and the grammar, text boxes through the text engine;
    the crops of every page in one batch go through each model together, turned upright first."""
    MODEL_CALLS["read"] += len(grays)
    turns = turns or [0] * len(grays)

    def cut(i: int, b: Box) -> np.ndarray:
        c = crop(grays[i], b)
        return np.ascontiguousarray(np.rot90(c, k=-turns[i])) if turns[i] else c

    dims = [(i, b) for i, bs in enumerate(boxes) for b in bs if b.cls == 0 and _usable(b)]
    texts = [(i, b) for i, bs in enumerate(boxes) for b in bs if b.cls == 1 and _usable(b)]
    out: list[list[Reading]] = [[] for _ in grays]
    for (i, box), (raw, conf) in zip(dims, models.reader.read([cut(i, b) for i, b in dims]), strict=True):
        out[i].append(interpret(Reading(box, raw, conf)))
    read_texts = models.text_engine.read([cut(i, b) for i, b in texts])
    for (i, box), (raw, conf) in zip(texts, read_texts, strict=True):
        out[i].append(Reading(box, raw, conf))
    return out


def segment(models: ModelSet, gray: np.ndarray) -> Strokes:
    from dimflow.segment.vectorize import build_graph

    MODEL_CALLS["segment"] += 1
    g = build_graph(gray)
    cls, _ = models.segmenter.predict(g)
    return Strokes(g.segments.astype(np.float32), cls.astype(np.int64))


# ---------------------------------------------------------------- merge


def dimension_support(box: Box, strokes: Strokes) -> int:
    """Dimension-graphics strokes (dimension/extension lines, arrowheads, leaders) ending near the box.

    A callout is written along its dimension line or at the end of a leader, so such strokes lie
    within about one text height of it; text that is not a dimension has none.
    """
    if len(strokes.cls) == 0:
        return 0
    m = max(box.y1 - box.y0, box.x1 - box.x0 if box.y1 - box.y0 > box.x1 - box.x0 else 0, 8.0)
    m = min(m, 60.0)
    seg = strokes.segments[strokes.cls == 1]
    if len(seg) == 0:
        return 0
    pts = np.concatenate([seg[:, :2], seg[:, 2:], (seg[:, :2] + seg[:, 2:]) / 2])
    near = (pts[:, 0] >= box.x0 - m) & (pts[:, 0] <= box.x1 + m) & (pts[:, 1] >= box.y0 - m) & (pts[:, 1] <= box.y1 + m)
    return int(near.reshape(3, -1).any(axis=0).sum())


def _inside(box: Box, region: Box) -> bool:
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return region.x0 <= cx <= region.x1 and region.y0 <= cy <= region.y1


def confidence(det_score: float, read_conf: float, support: int) -> float:
    """The belief that the whole dimension is right: detection and reading both hold, and the
    geometry agrees. Reading confidence is the CTC per-character mean, so it dominates."""
    geometry = 1.0 if support >= 2 else 0.8 if support == 1 else 0.5
    return round(float(np.clip(min(1.0, det_score / 0.8) * read_conf * geometry, 0.0, 1.0)), 4)


def merge(
    readings: list[Reading],
    strokes: Strokes | None,
    boxes: list[Box],
    image: tuple[int, int],
    drawing_id: str,
    source: str | None,
    refs: dict[str, str],
    timings_ms: dict[str, float],
) -> DrawingResult:
    """Pair each callout box with its reading and fields, tie it to its dimension lines, and sort
    out what is not a dimension (unparsable strings, text in the title block) into `texts`."""
    title_blocks = [b for b in boxes if b.cls == 2]
    dims: list[Dimension] = []
    texts: list[TextItem] = []
    for r in readings:
        b = r.box
        bbox = (round(b.x0, 1), round(b.y0, 1), round(b.x1, 1), round(b.y1, 1))
        in_title = any(_inside(b, t) for t in title_blocks)
        if b.cls == 0 and r.callout is not None and not in_title:
            support = dimension_support(b, strokes) if strokes is not None else 2
            if support == 0 and r.confidence < 0.5:  # neither the geometry nor the reading vouches for it
                texts.append(TextItem(text=r.raw, bbox=bbox, confidence=round(r.confidence * 0.5, 4)))
                continue
            c = r.callout
            fields = c.fields()
            dims.append(
                Dimension(
                    text=fields["text"],
                    kind=fields["kind"],
                    nominal=fields["nominal"],
                    unit=fields["unit"],
                    upper=fields["upper"],
                    lower=fields["lower"],
                    fit=fields["fit"],
                    count=fields["count"],
                    bbox=bbox,
                    confidence=confidence(b.score, r.confidence * (0.7 if r.repaired else 1.0), support),
                )
            )
        elif r.raw.strip():
            # a callout box whose reading does not parse is reported as text at low belief
            penalty = 0.3 if b.cls == 0 else 1.0
            texts.append(TextItem(text=r.raw.strip(), bbox=bbox, confidence=round(r.confidence * penalty, 4)))
    dims.sort(key=lambda d: (round(d.bbox[1] / 50), d.bbox[0]))  # reading order, in bands of 50 px
    for i, d in enumerate(dims, 1):
        d.id = f"d{i}"
    return DrawingResult(
        drawing_id=drawing_id,
        source=source,
        image=ImageSize(width=image[0], height=image[1]),
        models=refs,
        dimensions=dims,
        texts=texts,
        timings_ms=timings_ms,
    )


def process_page(
    models: ModelSet,
    gray: np.ndarray,
    drawing_id: str,
    source: str | None = None,
    use_segmenter: bool = True,
    dpi: float | None = None,
) -> DrawingResult:
    """All stages in one call (the benchmarks and GPU checks use it; the flows run them as tasks)."""
    t = StageTimer()
    t0 = time.perf_counter()
    found = detect(models, gray, dpi)
    boxes = found.boxes
    t.add("detect", t0)
    t0 = time.perf_counter()
    readings = read(models, gray, boxes, found.turn)
    t.add("recognize", t0)
    strokes = None
    if use_segmenter:
        t0 = time.perf_counter()
        strokes = segment(models, gray)
        t.add("segment", t0)
    t0 = time.perf_counter()
    result = merge(readings, strokes, boxes, (gray.shape[1], gray.shape[0]), drawing_id, source, models.refs, t.ms)
    t.add("merge", t0)
    result.timings_ms = t.ms
    return result
