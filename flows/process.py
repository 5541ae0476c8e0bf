"""Flows: one drawing (`process-drawing`) and many (`process-batch`), wiring tasks only."""

from __future__ import annotations

from typing import Any

from prefect import flow, unmapped
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from dimflow.champions import models_key
from dimflow.jobs import JobFile
from dimflow.records import PageRef, StoredResult
from tasks.process import (
    detect_page,
    detect_page_async,
    detect_pages,
    finish_job,
    load_drawing,
    load_drawing_async,
    merge_page,
    persist_page,
    publish_summary,
    read_page,
    read_page_async,
    read_pages,
    remember_results,
    resolve_models,
    segment_page,
    segment_page_async,
    served_from_cache,
    start_job,
    store_page,
)


def _page(page: PageRef, refs: dict[str, str], storage: str | None) -> StoredResult:
    mk = models_key(refs)
    strokes = segment_page.submit(page, mk, storage)  # runs beside detect + read
    found = detect_page(page, mk, storage, return_state=True)
    readings = read_page(page, found.result(), mk, storage, return_state=True)
    strokes.wait()
    cached = served_from_cache(detect=found, read=readings, segment=strokes.state)
    # quote(): large records (thousands of strokes) are passed as they are, not walked for futures (~0.2 s a page)
    result = merge_page(page, quote(found.result()), quote(readings.result()),
                        quote(strokes.result()), refs, cached)  # fmt: skip
    return persist_page(page, quote(result), storage)


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


@flow(name="process-job", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2), persist_result=False)
async def process_job(files: list[JobFile], storage: str | None = None, job_id: str | None = None) -> dict[str, Any]:
    """A service job: its uploaded drawings one after another on a warm worker, each answered from
    the result cache when these champions already read it; a bad file is reported with its reason
    and does not stop the others. Async, so a run costs no heartbeat thread; a task per stage and
    no more (the cache lookup and the outcome run in the body), since each task run costs the
    Prefect server CPU the models need. The job id is the run's own id unless given.
    Returns the job's outcome (also stored, for the API)."""
    start = start_job(files, storage)  # the job's bookkeeping runs in the flow's body, its stages as tasks
    done: dict[int, list[StoredResult]] = {}
    errors: dict[int, BaseException] = {}
    for i, file in enumerate(files):
        if file.drawing_id in start.hits:
            done[i] = start.hits[file.drawing_id]
            continue
        loaded = await load_drawing_async(file.source, storage, return_state=True)
        if not loaded.is_completed():
            errors[i] = await loaded.aresult(raise_on_failure=False)
            continue
        done[i] = [await _job_page(p, start.refs, storage) for p in await loaded.aresult()]
    outcome = finish_job(job_id or str(flow_run.id), files, done, errors, start, storage)
    return outcome.model_dump(mode="json")


async def _job_page(page: PageRef, refs: dict[str, str], storage: str | None) -> StoredResult:
    # the stages run one after another (they take turns on the cores anyway), merge and store as one
    # task; no stage comes from a cache here: the job's whole result did not (start_job looked)
    mk = models_key(refs)
    detections = await detect_page_async(page, mk, storage)
    readings = await read_page_async(page, detections, mk, storage)
    strokes = await segment_page_async(page, mk, storage)
    return await store_page(page, quote(detections), quote(readings), quote(strokes), refs, frozenset(), storage)
