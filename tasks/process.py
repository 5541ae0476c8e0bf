"""Prefect tasks around the processing stages: each calls one function of `dimflow`.

Between tasks travel the typed records of `dimflow.records` (page refs, detections, readings,
strokes), never images or tensors. Model stages are cached on the page's content-addressed key,
the exact model versions and the inference version, so a drawing processed again with the same
champions runs no model. No task retries: inference and merging are deterministic (a retry
would fail the same way), a bad file stays bad, and storage retries its own transient errors
(botocore's standard retry mode for S3), so failures do not multiply across layers.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from pydantic import BaseModel

from dimflow import cache, champions, devices, inputs, report, stages
from dimflow.jobs import FileOutcome, JobFile, JobOutcome, outcome_key
from dimflow.merge import merge
from dimflow.records import Detections, PageRef, Readings, StoredResult, Strokes
from dimflow.schema import DrawingResult
from dimflow.settings import get_settings
from dimflow.storage import Storage, StorageConflict, storage_from_url

CACHE_FOR = timedelta(days=30)


def resolve_storage(where: str | None = None) -> Storage:
    """A storage from a URL/folder, a saved block ("block:<name>"), or the settings' default."""
    if where and where.startswith("block:"):
        from prefect.blocks.core import Block

        return Block.load(where.removeprefix("block:")).storage()
    s = get_settings()
    return storage_from_url(where or s.storage_url or str(s.data_dir.resolve() / "store"))


_PAGES: OrderedDict[tuple[str | None, str], np.ndarray] = OrderedDict()
_PAGES_LOCK = threading.Lock()
_PAGES_KEPT = 4


def _keep(storage: str | None, page: PageRef, gray: np.ndarray) -> None:
    gray.setflags(write=False)
    with _PAGES_LOCK:
        _PAGES[(storage, page.key)] = gray
        _PAGES.move_to_end((storage, page.key))
        while len(_PAGES) > _PAGES_KEPT:
            _PAGES.popitem(last=False)


def _pixels(storage: str | None, page: PageRef) -> np.ndarray:
    """A page's pixels for the detect, read, segment and persist tasks of a worker: as the load task
    decoded them, else fetched and decoded once (page keys carry the pixels' hash, so a kept page
    never goes stale); read-only, since the tasks share it."""
    with _PAGES_LOCK:
        gray = _PAGES.get((storage, page.key))
    if gray is None:
        gray = stages.page_pixels(resolve_storage(storage), page)
        _keep(storage, page, gray)
    return gray


def _stage_key(stage: str):
    def key(context, parameters: dict[str, Any]) -> str:
        pages = parameters["page"] if "page" in parameters else parameters["pages"]
        pages = [pages] if isinstance(pages, PageRef) else pages
        held = ",".join(f"{p.key}@{p.dpi}+{p.text_key}" for p in pages)  # page keys hold their content's hash
        digest = hashlib.sha256(f"{held}|{parameters['models']}|{stages.INFERENCE_VERSION}".encode()).hexdigest()
        return f"{stage}-{digest[:40]}"

    return key


def served_from_cache(**states: State) -> frozenset[str]:
    """The stages whose task run was served from Prefect's cache instead of running its model."""
    return frozenset(name for name, state in states.items() if state.name == "Cached")


def _load(path: str, storage: str | None) -> list[PageRef]:
    return stages.load(path, resolve_storage(storage), get_settings().limits(),
                       on_page=lambda ref, gray: _keep(storage, ref, gray))  # fmt: skip


# `models` (a models key) names the set the run started with: a worker that loads a new champion
# meanwhile keeps it for the runs in flight (champions.loaded_models)


def _detect(page: PageRef, models: str, storage: str | None) -> Detections:
    gray = _pixels(storage, page)
    with devices.model_turn():
        return stages.detect(champions.loaded_models(models), gray, page.dpi)


def _read(page: PageRef, found: Detections, models: str, storage: str | None) -> Readings:
    gray = _pixels(storage, page)
    runs = stages.page_runs(resolve_storage(storage), page)
    if runs:  # the text layer needs no model: no turn to wait for
        return stages.read_text_layer(gray, found, runs)
    with devices.model_turn():
        return stages.read(champions.loaded_models(models), gray, found)


def _segment(page: PageRef, models: str, storage: str | None) -> Strokes:
    gray = _pixels(storage, page)
    with devices.model_turn():
        return stages.segment(champions.loaded_models(models), gray)


@task(cache_policy=NO_CACHE)
def load_drawing(path: str, storage: str | None = None) -> list[PageRef]:
    """Check and render a drawing (a path, `store:<key>` or `s3://bucket/key`), refusing bad input
    with its reason; store each page as PNG."""
    return _load(path, storage)


@task(cache_policy=NO_CACHE)
def resolve_models() -> dict[str, str]:
    """The models this worker runs: the champions, or the versions it fell back to (with a note),
    plus the text engine and the device. Loads them on a cold worker; a warm one has them."""
    return dict(champions.get_models().refs)  # the one registry check of a run; its stages use what this loaded


@task(cache_key_fn=_stage_key("detect"), cache_expiration=CACHE_FOR, persist_result=True)
def detect_page(page: PageRef, models: str, storage: str | None = None) -> Detections:
    """Boxes in the page's pixels, and the quarter turns its sheet shows (0 unless scanned turned)."""
    return _detect(page, models, storage)


@task(cache_key_fn=_stage_key("read"), cache_expiration=CACHE_FOR, persist_result=True)
def read_page(page: PageRef, found: Detections, models: str, storage: str | None = None) -> Readings:
    return _read(page, found, models, storage)


@task(cache_key_fn=_stage_key("segment"), cache_expiration=CACHE_FOR, persist_result=True)
def segment_page(page: PageRef, models: str, storage: str | None = None) -> Strokes:
    return _segment(page, models, storage)


# The service's job flow (async) runs the same stages as async tasks under the same names: Prefect
# runs a sync task called from an async flow through a thread hand-off of its own that costs ~35 ms
# of CPU a task run (measured, 2 cores); these hand the work to a thread themselves. They are not
# cached stage by stage: a job is answered whole from the result cache (content hash + champions)
# before any stage runs, so a stage record would only be written, never read, and persisting one
# costs ~25 ms of CPU however small (measured here): ~75 ms a page taken from the models' cores.


@task(name="load_drawing", cache_policy=NO_CACHE)
async def load_drawing_async(path: str, storage: str | None = None) -> list[PageRef]:
    return await asyncio.to_thread(_load, path, storage)


@task(name="detect_page", cache_policy=NO_CACHE, persist_result=False)
async def detect_page_async(page: PageRef, models: str, storage: str | None = None) -> Detections:
    return await asyncio.to_thread(_detect, page, models, storage)


@task(name="read_page", cache_policy=NO_CACHE, persist_result=False)
async def read_page_async(page: PageRef, found: Detections, models: str, storage: str | None = None) -> Readings:
    return await asyncio.to_thread(_read, page, found, models, storage)


@task(name="segment_page", cache_policy=NO_CACHE, persist_result=False)
async def segment_page_async(page: PageRef, models: str, storage: str | None = None) -> Strokes:
    return await asyncio.to_thread(_segment, page, models, storage)


@task(cache_key_fn=_stage_key("detect-batch"), cache_expiration=CACHE_FOR, persist_result=True)
def detect_pages(pages: list[PageRef], models: str, storage: str | None = None) -> list[Detections]:
    """A batch flow's pages through the detector together."""
    grays = [_pixels(storage, p) for p in pages]
    return stages.detect_many(champions.loaded_models(models), grays, [p.dpi for p in pages])


@task(cache_key_fn=_stage_key("read-batch"), cache_expiration=CACHE_FOR, persist_result=True)
def read_pages(
    pages: list[PageRef], found: list[Detections], models: str, storage: str | None = None
) -> list[Readings]:
    """A batch flow's callout and text crops through the readers together."""
    store = resolve_storage(storage)
    runs = [stages.page_runs(store, p) for p in pages]
    return stages.read_many(champions.loaded_models(models), [_pixels(storage, p) for p in pages], found, runs)


@task(cache_policy=NO_CACHE)
def merge_page(
    page: PageRef,
    found: Detections,
    readings: Readings,
    strokes: Strokes | None,
    refs: dict[str, str],
    cached: frozenset[str] = frozenset(),
) -> DrawingResult:
    """The contract's result for the page."""
    return merge(page, found, readings, strokes, refs, cached)


@task(cache_policy=NO_CACHE)
def persist_page(page: PageRef, result: DrawingResult, storage: str | None = None) -> StoredResult:
    """Result JSON, ballooned PNG and inspection CSV, content-addressed: an identical rerun stores nothing."""
    return report.persist(resolve_storage(storage), page, result, _pixels(storage, page))


def storage_scope(storage: str | None) -> str:
    """What tells one result storage from another in a cache key: where its results live."""
    return resolve_storage(storage).uri("results")


@task(cache_policy=NO_CACHE)
def remember_results(done: list[StoredResult], refs: dict[str, str], storage: str | None = None) -> int:
    """Put each drawing's results in the Redis cache, when there is one and the champions produced
    them; returns how many drawings were cached."""
    return _remember(done, refs, storage)


def _remember(done: list[StoredResult], refs: dict[str, str], storage: str | None = None) -> int:
    store = cache.result_cache()
    if store is None or not cache.cacheable(refs):
        return 0
    by_drawing: dict[str, list[StoredResult]] = {}
    for d in done:
        by_drawing.setdefault(d.page.drawing_id, []).append(d)
    scope, models = storage_scope(storage), cache.champions_key(refs)
    return sum(store.put(drawing_id, models, scope, pages) for drawing_id, pages in by_drawing.items())


@task(cache_policy=NO_CACHE)
def publish_summary(done: list[StoredResult], refs: dict[str, str], storage: str | None = None,
                    failed: dict[str, str] | None = None) -> None:  # fmt: skip
    """The run's artifacts in the Prefect UI: a table of the dimensions, a summary, links to the drawings."""
    store = resolve_storage(storage)
    results = [(d, DrawingResult.model_validate_json(store.get(d.objects["json"]))) for d in done]
    for d in done:  # a link the UI can open (a file:// one on the worker's disk it cannot)
        if d.uris["png"].startswith(("http", "s3://")):
            create_link_artifact(link=d.uris["png"], link_text=f"ballooned {d.page.source}{d.page.suffix}")
    create_table_artifact(table=report.dimension_rows(results), description="Dimensions found")
    create_markdown_artifact(markdown=report.summary_markdown(done, refs, failed), description="dimflow summary")


class JobStart(BaseModel):
    refs: dict[str, str]
    hits: dict[str, list[StoredResult]]  # drawing id -> its stored results, from the result cache


def start_job(files: list[JobFile], storage: str | None = None) -> JobStart:
    """The models this job runs (one registry check) and which of its drawings these champions
    already read (the Redis result cache, the results still in storage); Redis down: no hits.
    Called in the job flow's body, not as a task: every task run costs the Prefect server's
    task-run recorder three state upserts, CPU the models need on a small machine (measured: a
    server on the same 2 cores takes ~0.6 CPU-s a 7-task job)."""
    refs = dict(champions.get_models().refs)
    hits: dict[str, list[StoredResult]] = {}
    store = cache.result_cache()
    if store is not None and cache.cacheable(refs):
        models, scope, where = cache.champions_key(refs), storage_scope(storage), resolve_storage(storage)
        for f in files:
            if f.drawing_id and f.drawing_id not in hits:
                hit = store.get(f.drawing_id, models, scope)
                if hit is not None and all(where.exists(d.objects["json"]) for d in hit):
                    hits[f.drawing_id] = hit
    return JobStart(refs=refs, hits=hits)


@task(name="merge", cache_policy=NO_CACHE)
async def store_page(
    page: PageRef,
    found: Detections,
    readings: Readings,
    strokes: Strokes | None,
    refs: dict[str, str],
    cached: frozenset[str] = frozenset(),
    storage: str | None = None,
) -> StoredResult:
    """Merge a page's stages into the contract's result and store it with its ballooned PNG and CSV
    (one task, not two: every task run costs the Prefect server ~50 ms of CPU)."""

    def run() -> StoredResult:
        result = merge(page, found, readings, strokes, refs, cached)
        return report.persist(resolve_storage(storage), page, result, _pixels(storage, page))

    return await asyncio.to_thread(run)


def file_outcome(file: JobFile, done: list[StoredResult] | None = None, error: BaseException | None = None,
                 cached: bool = False, results: list[DrawingResult] | None = None) -> FileOutcome:  # fmt: skip
    """What became of one file of a job: its pages' results (with their dimensions' confidences, for
    the service's metrics) or why it failed."""
    if error is not None:
        reason = error.reason if isinstance(error, inputs.BadInput) else type(error).__name__
        return FileOutcome(**file.model_dump(exclude={"error"}), error=str(error), reason=reason)
    confidences = [d.confidence for r in results or [] for d in r.dimensions]
    return FileOutcome(**file.model_dump(exclude={"pages", "error"}), pages=len(done or []), cached=cached,
                       results=done or [], confidences=confidences)  # fmt: skip


def _publish_beside(markdown: str, description: str) -> threading.Thread:
    """The run's markdown artifact, sent from a thread of its own: the job's answer does not wait on
    the API call (~25 ms, more on a busy server). The thread runs in a copy of the caller's context,
    so it names the run and shares the worker's Prefect client; it is not a daemon, so a process
    that ends sends it first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.context import FlowRunContext

    flow_run = FlowRunContext.get().flow_run  # in the flow's body
    artifact = ArtifactCreate(type="markdown", description=description, data=markdown, flow_run_id=flow_run.id)
    log = get_run_logger()

    def send() -> None:
        try:
            get_client(sync_client=True).create_artifact(artifact=artifact)
        except Exception as exc:
            log.warning("run summary not published: %s", exc)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(send,), name="dimflow-artifact")
    thread.start()
    return thread


def finish_job(
    job_id: str,
    files: list[JobFile],
    done: dict[int, list[StoredResult]],
    errors: dict[int, BaseException],
    start: JobStart,
    storage: str | None = None,
) -> JobOutcome:
    """Store the job's outcome once (the API reads its results from it), put new results in the
    result cache and the run's summary in the UI; a job whose every file failed fails its run with
    the files' reasons. `done` and `errors` are by the file's position in `files`. In the flow's
    body, not a task (see start_job); it runs in the job's run context, so its artifact is the run's."""
    store = resolve_storage(storage)
    read = {d.objects["json"]: DrawingResult.model_validate_json(store.get(d.objects["json"]))
            for pages in done.values() for d in pages}  # fmt: skip
    outcomes = [
        file_outcome(f, error=errors[i]) if i in errors else
        file_outcome(f, done.get(i, []), cached=f.drawing_id in start.hits,
                     results=[read[d.objects["json"]] for d in done.get(i, [])])
        for i, f in enumerate(files)
    ]  # fmt: skip
    stage_ms: dict[str, float] = {}
    for f in outcomes:
        for r in f.results if not f.cached else []:
            for stage, ms in r.timings_ms.items():
                stage_ms[stage] = stage_ms.get(stage, 0.0) + ms
    outcome = JobOutcome(job_id=job_id, files=outcomes, models=start.refs, stage_ms=stage_ms)
    try:
        store.put(outcome_key(job_id), outcome.model_dump_json().encode(), "application/json")
    except StorageConflict:  # a retried run after a worker died past this point: the first outcome stands
        outcome = JobOutcome.model_validate_json(store.get(outcome_key(job_id)))
    fresh = [d for f in outcome.files if not f.cached for d in f.results]
    _remember(fresh, start.refs, storage)
    try:  # the UI's view of the run; a failure here must not fail a job whose results are stored
        pages = [(d, read[d.objects["json"]]) for f in outcome.files for d in f.results if d.objects["json"] in read]
        failed = {f.name: f.error for f in outcome.files if f.error}
        done_all = [d for f in outcome.files for d in f.results]
        text = report.summary_markdown(done_all, start.refs, failed) + report.dimensions_markdown(pages)
        _publish_beside(text, "dimflow job")
    except Exception as exc:
        get_run_logger().warning("run summary not published: %s", exc)
    if outcome.failed:
        raise JobFailed(outcome.files[0].reason or "failed", "; ".join(f"{f.name}: {f.error}" for f in outcome.files))
    return outcome


class JobFailed(RuntimeError):
    """Every file of a job was refused or failed; the message holds each one's reason, .reason the first's code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.reason, str(self)))
