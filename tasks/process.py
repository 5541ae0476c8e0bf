"""Prefect tasks around dimflow.pipeline: load, detect, read, segment, merge, persist.

Between tasks travel storage keys and small JSON (boxes, readings, the dimension strokes), never
images or tensors. Model stages are cached on the page's content hash and the exact model
versions, so a drawing processed again with the same champions runs no model. Retries only
where a retry can help: storage and I/O, never a file that is bad in itself.
"""

from __future__ import annotations

import hashlib
import io as _io
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from prefect import task
from prefect.cache_policies import NO_CACHE

from dimflow import io, pipeline, report
from dimflow.detect.model import Box
from dimflow.schema import DrawingResult
from dimflow.settings import get_settings
from dimflow.storage import Storage, storage_from_url

CACHE_FOR = timedelta(days=30)


def resolve_storage(where: str | None = None) -> Storage:
    """A storage from a URL/folder, a saved block ("block:<name>"), or the settings' default."""
    if where and where.startswith("block:"):
        from prefect.blocks.core import Block

        return Block.load(where.removeprefix("block:")).storage()
    s = get_settings()
    return storage_from_url(where or s.storage_url or str(s.data_dir.resolve() / "store"))


def _not_bad_input(task, task_run, state) -> bool:
    """Retry storage and I/O hiccups; a file that is bad in itself stays bad."""
    try:
        state.result()
    except io.BadInput:
        return False
    except Exception:
        return True
    return False


def _limits() -> io.Limits:
    s = get_settings()
    return io.Limits(max_bytes=s.max_bytes, max_pixels=s.max_pixels, max_pages=s.max_pages, pdf_dpi=s.pdf_dpi)


@task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_not_bad_input, cache_policy=NO_CACHE)
def load_drawing(path: str, storage: str | None = None) -> list[dict[str, Any]]:
    """Read a file, refuse bad input with its reason, store each page as PNG; returns page refs."""
    p = Path(path)
    pages = io.load_path(p, _limits())  # refuses a missing, oversized or bad file with its reason
    data = p.read_bytes()
    digest = io.content_hash(data)
    store = resolve_storage(storage)
    refs = []
    for page in pages:
        buf = _io.BytesIO()
        Image.fromarray(page.gray).save(buf, format="PNG", compress_level=1)
        png = buf.getvalue()
        # the page's own hash in its key: another render (a new pdf_dpi, say) is another page
        key = f"pages/{digest}/{page.number}-{hashlib.sha256(png).hexdigest()[:16]}.png"
        store.put(key, png, "image/png")
        refs.append(
            {
                "drawing_id": digest,
                "source": str(p),
                "page": page.number,
                "n_pages": page.n_pages,
                "suffix": page.suffix,
                "key": key,
                "dpi": page.dpi,
                "width": int(page.gray.shape[1]),
                "height": int(page.gray.shape[0]),
            }
        )
    return refs


def _gray(page: dict[str, Any], storage: str | None) -> np.ndarray:
    return _page_pixels(storage, page["key"])


@lru_cache(maxsize=4)
def _page_pixels(storage: str | None, key: str) -> np.ndarray:
    """A stored page, fetched and decoded once for the detect, read, segment and persist tasks of
    a worker (page keys carry the pixels' hash, so a cached page never goes stale); read-only,
    since the tasks share it."""
    gray = np.array(Image.open(_io.BytesIO(resolve_storage(storage).get(key))).convert("L"))
    gray.setflags(write=False)
    return gray


def _stage_key(stage: str):
    def key(context, parameters: dict[str, Any]) -> str:
        page, models = parameters["page"], parameters["models"]  # the page key holds its pixels' hash
        key = f"{page['key']}|{page.get('dpi')}|{models}|{pipeline.INFERENCE_VERSION}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{stage}-{page['drawing_id']}-p{page['page']}-{digest}"

    return key


@task(cache_policy=NO_CACHE)
def resolve_models() -> dict[str, str]:
    """The models this worker runs: the champions, or the versions it fell back to (with a note),
    plus the text engine and the device. Loads them on a cold worker; a warm one has them."""
    return dict(pipeline.get_models().refs)


def models_key(refs: dict[str, str]) -> str:
    """What cached stage results depend on: the exact versions that ran, not the notes about them."""
    return ",".join(f"{k}={v}" for k, v in sorted(refs.items()) if not k.endswith("_note"))


@task(cache_key_fn=_stage_key("detect"), cache_expiration=CACHE_FOR, persist_result=True, retries=1)
def detect_page(page: dict[str, Any], models: str, storage: str | None = None) -> dict[str, Any]:
    """Boxes in the page's pixels, and the quarter turns its sheet shows (0 unless scanned turned)."""
    return _detections(pipeline.detect(pipeline.get_models(), _gray(page, storage), page.get("dpi")))


def _detections(found: pipeline.Detections) -> dict[str, Any]:
    return {"turn": found.turn, "boxes": [[b.cls, b.x0, b.y0, b.x1, b.y1, b.score] for b in found.boxes]}


def _boxes(rows: list[list[float]]) -> list[Box]:
    return [Box(int(r[0]), *map(float, r[1:])) for r in rows]


@task(cache_key_fn=_stage_key("read"), cache_expiration=CACHE_FOR, persist_result=True, retries=1)
def read_page(page: dict[str, Any], found: dict[str, Any], models: str, storage: str | None = None) -> list[dict]:
    gray = _gray(page, storage)
    return _reading_rows(pipeline.read(pipeline.get_models(), gray, _boxes(found["boxes"]), found["turn"]))


def _batch_key(stage: str):
    def key(context, parameters: dict[str, Any]) -> str:
        pages = ",".join(f"{p['key']}@{p.get('dpi')}" for p in parameters["pages"])
        key = f"{pages}|{parameters['models']}|{pipeline.INFERENCE_VERSION}"
        return f"{stage}-" + hashlib.sha256(key.encode()).hexdigest()[:32]

    return key


def _reading_rows(readings: list[pipeline.Reading]) -> list[dict]:
    return [{"box": [r.box.cls, r.box.x0, r.box.y0, r.box.x1, r.box.y1, r.box.score], "raw": r.raw,
             "confidence": r.confidence} for r in readings]  # fmt: skip


@task(cache_key_fn=_batch_key("detect-batch"), cache_expiration=CACHE_FOR, persist_result=True, retries=1)
def detect_pages(pages: list[dict[str, Any]], models: str, storage: str | None = None) -> list[dict[str, Any]]:
    """A batch flow's pages through the detector together."""
    grays = [_gray(p, storage) for p in pages]
    return [_detections(f) for f in pipeline.detect_many(pipeline.get_models(), grays, [p.get("dpi") for p in pages])]


@task(cache_key_fn=_batch_key("read-batch"), cache_expiration=CACHE_FOR, persist_result=True, retries=1)
def read_pages(
    pages: list[dict[str, Any]], found: list[dict[str, Any]], models: str, storage: str | None = None
) -> list[list[dict]]:
    """A batch flow's callout and text crops through the readers together."""
    grays = [_gray(p, storage) for p in pages]
    boxes, turns = [_boxes(f["boxes"]) for f in found], [f["turn"] for f in found]
    readings = pipeline.read_many(pipeline.get_models(), grays, boxes, turns)
    return [_reading_rows(r) for r in readings]


@task(cache_key_fn=_stage_key("segment"), cache_expiration=CACHE_FOR, persist_result=True, retries=1)
def segment_page(page: dict[str, Any], models: str, storage: str | None = None) -> dict[str, Any]:
    """Only what the merge needs: the dimension-graphics strokes (plus counts for the summary)."""
    strokes = pipeline.segment(pipeline.get_models(), _gray(page, storage))
    dim = strokes.segments[strokes.cls == 1]
    counts = np.bincount(strokes.cls, minlength=4).tolist() if len(strokes.cls) else [0, 0, 0, 0]
    return {"dimension_segments": np.round(dim, 1).tolist(), "class_counts": counts}


@task(cache_policy=NO_CACHE)
def merge_page(
    page: dict[str, Any],
    found: dict[str, Any],
    readings: list[dict],
    strokes: dict[str, Any],
    refs: dict[str, str],
    timings_ms: dict[str, float],
) -> str:
    """The contract's JSON for the page."""
    parsed = []
    for r in readings:
        item = pipeline.Reading(_boxes([r["box"]])[0], r["raw"], r["confidence"])
        parsed.append(pipeline.interpret(item) if item.box.cls == 0 else item)
    seg = np.asarray(strokes["dimension_segments"], np.float32).reshape(-1, 4)
    stroke_map = pipeline.Strokes(seg, np.ones(len(seg), np.int64))
    result = pipeline.merge(
        parsed,
        stroke_map,
        _boxes(found["boxes"]),
        (page["width"], page["height"]),
        page["drawing_id"],
        page["source"],
        refs,
        timings_ms,
    )
    return result.to_json()


@task(retries=3, retry_delay_seconds=[1, 5, 15], cache_policy=NO_CACHE)
def persist_page(page: dict[str, Any], result_json: str, refs: dict[str, str], storage: str | None = None) -> dict:
    """Result JSON, ballooned PNG and inspection CSV under keys of the input's content hash, the model
    versions and the result's own hash: what is stored is never replaced."""
    store = resolve_storage(storage)
    result = DrawingResult.model_validate_json(result_json)
    mk = hashlib.sha256(models_key(refs).encode()).hexdigest()[:12]
    rh = hashlib.sha256(result_json.encode()).hexdigest()[:12]  # a rerun (new timings) adds, never replaces
    base = f"results/{page['drawing_id']}/p{page['page']}-{mk}-{rh}"
    gray = _gray(page, storage)
    return {
        **page,
        "json": store.put(f"{base}/result.json", result_json.encode(), "application/json"),
        "png": store.put(f"{base}/balloons.png", report.balloon_png(gray, result), "image/png"),
        "csv": store.put(f"{base}/inspection.csv", report.inspection_csv(result), "text/csv"),
        "keys": {"json": f"{base}/result.json", "png": f"{base}/balloons.png", "csv": f"{base}/inspection.csv"},
        "n_dimensions": len(result.dimensions),
        "timings_ms": result.timings_ms,
    }
