"""Flows: one drawing (`process-drawing`) and many (`process-batch`), wiring tasks only."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from dimflow.champions import models_key
from dimflow.records import PageRef, StoredResult
from tasks.process import (
    detect_page,
    detect_pages,
    load_drawing,
    merge_page,
    persist_page,
    publish_summary,
    read_page,
    read_pages,
    remember_results,
    resolve_models,
    segment_page,
    served_from_cache,
)


def _page(page: PageRef, refs: dict[str, str], storage: str | None) -> StoredResult:
    mk = models_key(refs)
    strokes = segment_page.submit(page, mk, storage)  # runs beside detect + read
    found = detect_page(page, mk, storage, return_state=True)
    readings = read_page(page, found.result(), mk, storage, return_state=True)
    strokes.wait()
    cached = served_from_cache(detect=found, read=readings, segment=strokes.state)
    result = merge_page(page, found.result(), readings.result(), strokes.result(), refs, cached)
    return persist_page(page, result, storage)


@flow(name="process-drawing", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def process_drawing(path: str, storage: str | None = None) -> list[StoredResult]:
    """Every dimension of one drawing (each PDF page a drawing) as the contract's JSON. `path` is a
    file the worker can read, `store:<key>` of an object in the result storage (an upload) or an
    `s3://bucket/key` URI."""
    pages = load_drawing(path, storage)
    refs = resolve_models()
    done = [_page(p, refs, storage) for p in pages]
    remember_results(done, refs, storage)
    publish_summary(done, refs, storage)
    for d in done:
        print(f"{d.page.source}{d.page.suffix}: {d.n_dimensions} dimensions -> {d.uris['json']}")
    return done


@flow(name="process-batch", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def process_batch(paths: list[str], storage: str | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Many drawings: files load concurrently, detector and readers see `batch_size` pages at a time,
    strokes are segmented per page beside them; a bad file is reported with its reason and does not
    stop the others."""
    loads = load_drawing.map(paths, unmapped(storage))
    refs = resolve_models()
    mk = models_key(refs)
    failed: dict[str, str] = {}
    pages: list[PageRef] = []
    for path, fut in zip(paths, loads, strict=True):
        fut.wait()
        if fut.state.is_completed():
            pages += fut.result()
        else:
            failed[path] = str(fut.state.result(raise_on_failure=False))
    strokes = segment_page.map(pages, unmapped(mk), unmapped(storage))  # per page, beside the batches
    persisted = []
    for start in range(0, len(pages), batch_size):  # batched inference, bounded memory
        chunk = pages[start : start + batch_size]
        found = detect_pages(chunk, mk, storage, return_state=True)
        readings = read_pages(chunk, found.result(), mk, storage, return_state=True)
        for i, page in enumerate(chunk):
            seg = strokes[start + i]
            seg.wait()
            cached = served_from_cache(detect=found, read=readings, segment=seg.state)
            result = merge_page(page, found.result()[i], readings.result()[i], seg.result(), refs, cached)
            persisted.append(persist_page.submit(page, result, storage))
    done: list[StoredResult] = [f.result() for f in persisted]
    remember_results(done, refs, storage)
    publish_summary(done, refs, storage, failed)
    for path, why in failed.items():
        print(f"FAILED {path}: {why}")
    return {"done": done, "failed": failed}
