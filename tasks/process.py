"""Prefect tasks around the processing stages: each calls one function of `dimflow`.

Between tasks travel the typed records of `dimflow.records` (page refs, detections, readings,
strokes), never images or tensors. Model stages are cached on the page's content-addressed key,
the exact model versions and the inference version, so a drawing processed again with the same
champions runs no model. No task retries: inference and merging are deterministic (a retry
would fail the same way), a bad file stays bad, and storage retries its own transient errors
(botocore's standard retry mode for S3), so failures do not multiply across layers.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from dimflow import cache, champions, report, stages
from dimflow.merge import merge
from dimflow.records import Detections, PageRef, Readings, StoredResult, Strokes
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


@lru_cache(maxsize=4)
def _pixels(storage: str | None, page: PageRef) -> np.ndarray:
    """A stored page, fetched and decoded once for the detect, read, segment and persist tasks of
    a worker (page keys carry the pixels' hash, so a cached page never goes stale); read-only,
    since the tasks share it."""
    return stages.page_pixels(resolve_storage(storage), page)


def _stage_key(stage: str):
    def key(context, parameters: dict[str, Any]) -> str:
        pages = parameters["page"] if "page" in parameters else parameters["pages"]
        pages = [pages] if isinstance(pages, PageRef) else pages
        held = ",".join(f"{p.key}@{p.dpi}" for p in pages)  # a page key holds its pixels' hash
        digest = hashlib.sha256(f"{held}|{parameters['models']}|{stages.INFERENCE_VERSION}".encode()).hexdigest()
        return f"{stage}-{digest[:40]}"

    return key


def served_from_cache(**states: State) -> frozenset[str]:
    """The stages whose task run was served from Prefect's cache instead of running its model."""
    return frozenset(name for name, state in states.items() if state.name == "Cached")


@task(cache_policy=NO_CACHE)
def load_drawing(path: str, storage: str | None = None) -> list[PageRef]:
    """Check and render a drawing (a path, `store:<key>` or `s3://bucket/key`), refusing bad input
    with its reason; store each page as PNG."""
    return stages.load(path, resolve_storage(storage), get_settings().limits())


@task(cache_policy=NO_CACHE)
def resolve_models() -> dict[str, str]:
    """The models this worker runs: the champions, or the versions it fell back to (with a note),
    plus the text engine and the device. Loads them on a cold worker; a warm one has them."""
    return dict(champions.get_models().refs)


@task(cache_key_fn=_stage_key("detect"), cache_expiration=CACHE_FOR, persist_result=True)
def detect_page(page: PageRef, models: str, storage: str | None = None) -> Detections:
    """Boxes in the page's pixels, and the quarter turns its sheet shows (0 unless scanned turned)."""
    return stages.detect(champions.get_models(), _pixels(storage, page), page.dpi)


@task(cache_key_fn=_stage_key("read"), cache_expiration=CACHE_FOR, persist_result=True)
def read_page(page: PageRef, found: Detections, models: str, storage: str | None = None) -> Readings:
    return stages.read(champions.get_models(), _pixels(storage, page), found)


@task(cache_key_fn=_stage_key("segment"), cache_expiration=CACHE_FOR, persist_result=True)
def segment_page(page: PageRef, models: str, storage: str | None = None) -> Strokes:
    return stages.segment(champions.get_models(), _pixels(storage, page))


@task(cache_key_fn=_stage_key("detect-batch"), cache_expiration=CACHE_FOR, persist_result=True)
def detect_pages(pages: list[PageRef], models: str, storage: str | None = None) -> list[Detections]:
    """A batch flow's pages through the detector together."""
    grays = [_pixels(storage, p) for p in pages]
    return stages.detect_many(champions.get_models(), grays, [p.dpi for p in pages])


@task(cache_key_fn=_stage_key("read-batch"), cache_expiration=CACHE_FOR, persist_result=True)
def read_pages(
    pages: list[PageRef], found: list[Detections], models: str, storage: str | None = None
) -> list[Readings]:
    """A batch flow's callout and text crops through the readers together."""
    return stages.read_many(champions.get_models(), [_pixels(storage, p) for p in pages], found)


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
    for d in done:
        if d.uris["png"].startswith(("http", "s3://", "file://")):
            create_link_artifact(link=d.uris["png"], link_text=f"ballooned {d.page.source}{d.page.suffix}")
    create_table_artifact(table=report.dimension_rows(results), description="Dimensions found")
    create_markdown_artifact(markdown=report.summary_markdown(done, refs, failed), description="dimflow summary")
