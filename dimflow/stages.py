"""The processing stages on one page's pixels: load, detect, read, segment (and all in one call).

Plain functions over numpy arrays and the records of `dimflow.records`; the Prefect tasks in
`tasks/` wrap one each. Every stage reports the time it took inside its record, so a result's
timings are the stages' own (and still known when a stage was served from cache).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from dimflow import inputs
from dimflow.champions import ModelSet
from dimflow.framed import sort_finishes, sort_framed
from dimflow.grammar import GrammarError, parse
from dimflow.merge import merge
from dimflow.pdftext import TextRun, page_text
from dimflow.records import Box, Detections, PageRef, Reading, Readings, Strokes
from dimflow.schema import CalloutFields, DrawingResult
from dimflow.storage import S3Storage, Storage

# bump when inference code changes what a stage returns for the same model files: cached stage
# results are keyed on it together with the input's hash and the model versions
INFERENCE_VERSION = "12"  # 6: text layer; 7: OCR frames; 8-11: grouping, OCR title blocks, frames; 12: glyph strips
TEXT_LAYER = 0.97  # a text-layer callout's reading belief: exact strings, assembled from runs
TEXT_LAYER_INFERRED = 0.9  # ... with a diameter sign found drawn beside it
CROP_PAD_PX = 4  # the reader was trained on crops padded this much around the text (dimflow.synth.dataset)


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


# ---------------------------------------------------------------- load


def fetch(source: str, store: Storage, limits: inputs.Limits) -> tuple[str, bytes]:
    """A drawing's file name and bytes, from a path the worker can read, `store:<key>` (an object in
    the result storage, as an upload is kept) or `s3://bucket/key` (boto3's credentials and
    endpoint, e.g. AWS_ENDPOINT_URL_S3). Oversized and missing inputs are refused before their
    bytes are fetched."""
    if not source.startswith(("store:", "s3://")):
        return Path(source).name, inputs.read_file(Path(source), limits)
    if source.startswith("store:"):
        origin, key = store, source.removeprefix("store:")
    else:
        bucket, _, key = source.removeprefix("s3://").partition("/")
        origin = S3Storage(bucket=bucket)
    name = key.rsplit("/", 1)[-1]
    try:
        size = origin.size(key)
    except (FileNotFoundError, ValueError) as exc:  # ValueError: a key the storage refuses (.., //, ...)
        raise inputs.BadInput("missing", f"{source}: no such object ({exc}); check the key or URI.") from None
    if size > limits.max_bytes:
        raise inputs.too_large(name, size, limits)
    return name, origin.get(key)


def load(
    source: str, store: Storage, limits: inputs.Limits, on_page: Callable[[PageRef, np.ndarray], None] | None = None
) -> list[PageRef]:
    """Check and render a drawing (refusing bad input with its reason), store each page as PNG
    under the file's content hash and the page's pixels' hash (another render of the same file,
    at another dpi, is another page), and return where the pages are."""
    name, data = fetch(source, store, limits)
    pages = inputs.load_pages(data, name, limits)
    digest = inputs.content_hash(data)
    is_pdf = inputs.sniff(data, name) == "pdf"
    refs = []
    as_sent = len(pages) == 1 and not is_pdf and _gray_png(data)
    for page in pages:
        if as_sent:  # its pixels already: no second encoding (~17 ms an A4 page at 200 dpi)
            png = data
        else:
            buf = io.BytesIO()
            Image.fromarray(page.gray).save(buf, format="PNG", compress_level=1)
            png = buf.getvalue()
        key = f"pages/{digest}/{page.number}-{hashlib.sha256(png).hexdigest()[:16]}.png"
        store.put(key, png, "image/png")
        text_key = None
        if is_pdf and page.dpi and (runs := page_text(data, page.number - 1, page.dpi)):
            blob = json.dumps([dataclasses.asdict(r) for r in runs], ensure_ascii=False).encode()
            text_key = f"pages/{digest}/{page.number}-{hashlib.sha256(blob).hexdigest()[:16]}-text.json"
            store.put(text_key, blob, "application/json")
        refs.append(
            PageRef(drawing_id=digest, source=source, page=page.number, n_pages=page.n_pages, key=key,
                    dpi=page.dpi, width=int(page.gray.shape[1]), height=int(page.gray.shape[0]), text_key=text_key)
        )  # fmt: skip
        if on_page is not None:  # a worker keeps the decoded pixels rather than decode its own PNG again
            on_page(refs[-1], page.gray)
    return refs


def _gray_png(data: bytes) -> bool:
    """Whether a file is a PNG that decodes to exactly the gray page `inputs` makes of it: 8-bit gray,
    nothing transparent, no orientation tag to apply."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            return (im.format == "PNG" and im.mode == "L" and not im.has_transparency_data
                    and getattr(im, "n_frames", 1) == 1 and im.getexif().get(0x0112, 1) == 1)  # fmt: skip
    except (OSError, ValueError, SyntaxError):
        return False


def page_runs(store: Storage, page: PageRef) -> list[TextRun] | None:
    """A stored page's PDF text layer, or None for a page OCR reads."""
    if page.text_key is None:
        return None
    return [TextRun(**{**r, "box": tuple(r["box"])}) for r in json.loads(store.get(page.text_key))]


def page_pixels(store: Storage, page: PageRef) -> np.ndarray:
    """A stored page's gray pixels, read-only (callers may share one decoded copy)."""
    gray = np.array(Image.open(io.BytesIO(store.get(page.key))).convert("L"))
    gray.setflags(write=False)
    return gray


# ---------------------------------------------------------------- detect


def crop(gray: np.ndarray, box: Box, pad: int = CROP_PAD_PX) -> np.ndarray:
    h, w = gray.shape
    x0, y0 = max(0, int(box.x0) - pad), max(0, int(box.y0) - pad)
    x1, y1 = min(w, int(box.x1) + 1 + pad), min(h, int(box.y1) + 1 + pad)
    return gray[y0:y1, x0:x1]


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
    found = sorted((b for b in boxes if b.cls in (0, 1) and b.usable), key=lambda b: -b.score)[:150]
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
    sideways or upside down is detected again upright, its boxes carried back onto the page.
    Each page's time is its share of the batch's."""
    t0 = time.perf_counter()
    dpis = dpis or [None] * len(grays)
    found = []
    for gray, dpi, boxes in zip(grays, dpis, models.detector.detect_many(grays, dpis), strict=True):
        turn = page_turn(models, gray, boxes)
        if turn:
            upright = np.ascontiguousarray(np.rot90(gray, k=-turn))
            boxes = [turn_box(b, turn, upright.shape) for b in models.detector.detect(upright, dpi)]
        found.append((boxes, turn))
    each = _ms_since(t0) / max(1, len(grays))
    return [Detections(boxes=boxes, turn=turn, elapsed_ms=round(each, 1)) for boxes, turn in found]


# ---------------------------------------------------------------- read

_DEBRIS = ")/-.,|:"


def interpret(box: Box, raw: str, confidence: float) -> Reading:
    """Parse a callout reading; if it fails, trim what a recogniser leaves at the edges of a crop
    (a stray bracket, slash or hyphen from a neighbouring stroke) and try again."""
    try:
        return Reading(box=box, raw=raw, confidence=confidence, fields=CalloutFields(**parse(raw).fields()))
    except GrammarError as exc:
        error = str(exc)
    text = raw.strip()
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
            fields = CalloutFields(**parse(cand).fields())
        except GrammarError:
            continue
        return Reading(box=box, raw=raw, confidence=confidence, fields=fields, error=error, repaired=True)
    return Reading(box=box, raw=raw, confidence=confidence, error=error)


# the callout reader knows only a callout's characters, so it reads a section label or a table's cell as
# digits; below this belief (the reader's, and the detector's as the merge counts it) the text engine,
# which knows letters, reads the box as well
SECOND_OPINION = 0.9
# words a callout may hold (`dimflow.grammar`): any other run of three letters makes a reading text
CALLOUT_WORDS = frozenset(
    {"THRU", "ALL", "TYP", "TYPICAL", "MAX", "MIN", "PLACES", "PLCS", "PL", "DEEP", "REF", "EQS", "HOLES", "NUT"}
)
_TABLE_CELL = re.compile(r"[A-NP-Z]{1,2}\d{1,2}")  # a zone or table cell (`D2`); not O or Q, Ø's misreadings


def not_a_callout(raw: str, conf: float, sure: float = 0.9) -> bool:
    """The text engine's confident reading of a callout box says it is text: it has no digit (a
    datum's `A`, `ZONE`), or a word no callout has (`SCALE 1 : 2`, `DETAIL F`), or is a table's
    cell (`B2`); and the grammar refuses it."""
    text = raw.strip()
    if conf < sure or not text or interpret(Box(0, 0, 0, 1, 1, 1.0), text, conf).fields is not None:
        return False
    words = {w.upper().strip(".") for w in re.findall(r"[A-Za-z]{3,}\.?", text)}
    return not any(c.isdigit() for c in text) or bool(words - CALLOUT_WORDS) or bool(_TABLE_CELL.fullmatch(text))


def read(models: ModelSet, gray: np.ndarray, found: Detections, runs: list[TextRun] | None = None) -> Readings:
    return read_many(models, [gray], [found], [runs])[0]


def read_text_layer(gray: np.ndarray, found: Detections, runs: list[TextRun]) -> Readings:
    """A page with a PDF text layer: its exact strings sorted into callouts, frames, datums,
    roughness values, title block and text (`dimflow.textlayer`), no OCR."""
    from dimflow.textlayer import read_sheet

    t0 = time.perf_counter()
    hint = found.title_box()
    sheet = read_sheet(runs, gray, (hint.x0, hint.y0, hint.x1, hint.y1) if hint else None)
    items = []
    for c in sheet.callouts:
        # exact text; the belief left is in how its runs were put together (a drawn Ø inferred)
        conf = TEXT_LAYER_INFERRED if c.inferred_sign else TEXT_LAYER
        box = Box(0, *c.box, score=1.0)
        items.append(Reading(box=box, raw=c.text, confidence=conf, fields=c.fields, error=c.error))
    for text, box in sheet.texts:
        items.append(Reading(box=Box(1, *box, score=1.0), raw=text, confidence=1.0))
    return Readings(items=items, elapsed_ms=_ms_since(t0), source="pdf_text", gdt=sheet.gdt, datums=sheet.datums,
                    surface_finish=sheet.surface_finish, title_block=sheet.title_block)  # fmt: skip


def read_many(
    models: ModelSet, grays: list[np.ndarray], found: list[Detections], runs: list[list[TextRun] | None] | None = None
) -> list[Readings]:
    """Pages with a PDF text layer are read from it; the others' callout boxes go through the
    trained reader and the grammar, their text boxes through the text engine (the crops of every
    such page in one batch go through each model together, turned upright first)."""
    runs = runs if runs is not None else [None] * len(grays)
    layered = {i: read_text_layer(grays[i], found[i], r) for i, r in enumerate(runs) if r}
    if len(layered) == len(grays):
        return [layered[i] for i in range(len(grays))]
    ocr = [i for i in range(len(grays)) if i not in layered]
    read = _read_ocr(models, [grays[i] for i in ocr], [found[i] for i in ocr])
    by_page = dict(zip(ocr, read, strict=True)) | layered
    return [by_page[i] for i in range(len(grays))]


def _read_ocr(models: ModelSet, grays: list[np.ndarray], found: list[Detections]) -> list[Readings]:
    t0 = time.perf_counter()

    def cut(i: int, b: Box) -> np.ndarray:
        c = crop(grays[i], b)
        return np.ascontiguousarray(np.rot90(c, k=-found[i].turn)) if found[i].turn else c

    dims = [(i, b) for i, f in enumerate(found) for b in f.boxes if b.cls == 0 and b.usable]
    texts = [(i, b) for i, f in enumerate(found) for b in f.boxes if b.cls == 1 and b.usable]
    callouts = [interpret(b, raw, conf) for (_, b), (raw, conf) in
                zip(dims, models.reader.read([cut(i, b) for i, b in dims]), strict=True)]  # fmt: skip
    # a callout the reader doubts gets the text engine's reading too, read with the general texts
    doubted = [k for k, r in enumerate(callouts) if r.confidence * min(1.0, r.box.score / 0.8) < SECOND_OPINION]
    read_texts = models.text_engine.read([cut(i, b) for i, b in texts] + [cut(*dims[k]) for k in doubted])
    for k, (raw, conf) in zip(doubted, read_texts[len(texts) :], strict=True):
        if not_a_callout(raw, conf):  # letters no callout has: a label (SCALE 1:2), a table's cell, a datum
            callouts[k] = Reading(box=dataclasses.replace(dims[k][1], cls=1), raw=raw, confidence=conf)
    out: list[list[Reading]] = [[] for _ in grays]
    for (i, _), reading in zip(dims, callouts, strict=True):
        out[i].append(reading)
    for (i, box), (raw, conf) in zip(texts, read_texts[: len(texts)], strict=True):
        out[i].append(Reading(box=box, raw=raw, confidence=conf))
    pages = []
    for i, items in enumerate(out):
        items = _outside_tables(grays[i], items)
        items, finishes = sort_finishes(grays[i], items, models.text_engine.read)
        if found[i].turn:  # a sheet scanned turned: its frames run the other way; left as read
            pages.append((items, [], [], finishes))
        else:  # readings inside drawn frames are frames and datums, never dimensions
            pages.append((*sort_framed(grays[i], items, models.text_engine.read), finishes))
    blocks = [_ocr_title_block(grays[i], found[i], items) for i, (items, *_rest) in enumerate(pages)]
    each = round(_ms_since(t0) / max(1, len(grays)), 1)
    return [Readings(items=items, elapsed_ms=each, gdt=fcfs, datums=datums, surface_finish=finishes, title_block=tb)
            for (items, fcfs, datums, finishes), tb in zip(pages, blocks, strict=True)]  # fmt: skip


def _outside_tables(gray: np.ndarray, items: list[Reading]) -> list[Reading]:
    """A callout the detector found in a revision table (a zone `C2`, a date) is the table's text:
    the table is found by its header row, as on a text-layer page (`textlayer.revision_tables`)."""
    from dimflow.sheet import ink
    from dimflow.textlayer import revision_tables

    if not any(r.box.cls == 1 and r.raw.strip().upper() in ("ZONE", "DESCRIPTION", "APPROVED") for r in items):
        return items  # no revision table's header was read: nothing to look for
    at = [k for k, r in enumerate(items) if r.raw.strip()]
    runs = [TextRun(text=items[k].raw.strip(), box=(items[k].box.x0, items[k].box.y0, items[k].box.x1,
                    items[k].box.y1), angle=0, size=items[k].box.y1 - items[k].box.y0) for k in at]  # fmt: skip
    table = {at[j] for j in revision_tables(runs, ink(gray))}
    return [Reading(box=dataclasses.replace(r.box, cls=1), raw=r.raw, confidence=r.confidence)
            if k in table and r.box.cls == 0 else r for k, r in enumerate(items)]  # fmt: skip


def _ocr_title_block(gray: np.ndarray, found: Detections, items: list[Reading]):
    """The title block's fields from the text OCR read, by the same labels and drawn cells as on a
    text-layer page (the detector's title-block box, when it found one, bounds it)."""
    from dimflow.sheet import ink
    from dimflow.textlayer import grow_block, title_block

    if found.turn:
        return None
    hint = found.title_box()
    runs = [TextRun(text=r.raw.strip(), box=(r.box.x0, r.box.y0, r.box.x1, r.box.y1), angle=0,
                    size=r.box.y1 - r.box.y0) for r in items if r.box.cls == 1 and r.raw.strip()]  # fmt: skip
    mask = ink(gray)
    block, _ = title_block(runs, mask, (hint.x0, hint.y0, hint.x1, hint.y1) if hint else None)
    if block is not None and block.bbox is not None:  # its unlabelled cells too: the merge fences them
        boxes = [(r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in items if r.raw.strip()]
        block = block.model_copy(update={"bbox": grow_block(block.bbox, boxes, mask)})
    return block


# ---------------------------------------------------------------- segment


def segment(models: ModelSet, gray: np.ndarray) -> Strokes:
    """The page's strokes, each classed contour / dimension / text / other by the GraphSAGE net."""
    from dimflow.segment.vectorize import build_graph

    t0 = time.perf_counter()
    g = build_graph(gray)
    cls, _ = models.segmenter.predict(g)
    return Strokes.from_arrays(g.segments, cls, elapsed_ms=_ms_since(t0))


# ---------------------------------------------------------------- all in one


def process_page(
    models: ModelSet,
    gray: np.ndarray,
    page: PageRef,
    use_segmenter: bool = True,
    runs: list[TextRun] | None = None,
) -> DrawingResult:
    """All stages in one call (the benchmarks and GPU checks use it; the flows run them as tasks);
    `runs`: the page's PDF text layer, if it has one."""
    found = detect(models, gray, page.dpi)
    readings = read(models, gray, found, runs)
    strokes = segment(models, gray) if use_segmenter else None
    return merge(page, found, readings, strokes, models.refs)


def loose_page(gray: np.ndarray, source: str = "", dpi: float | None = None, drawing_id: str = "0" * 64) -> PageRef:
    """A PageRef for pixels that were never stored (benchmarks, behaviour tests)."""
    h, w = gray.shape[:2]
    return PageRef(drawing_id=drawing_id, source=source, page=1, n_pages=1, key="-", dpi=dpi, width=w, height=h)
