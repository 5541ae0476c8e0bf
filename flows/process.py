"""Flows: one drawing (`process-drawing`) and many (`process-batch`), wiring tasks only."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, unmapped
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.process import (
    detect_page,
    detect_pages,
    load_drawing,
    merge_page,
    models_key,
    persist_page,
    read_page,
    read_pages,
    resolve_models,
    resolve_storage,
    segment_page,
)


def _page(page: dict[str, Any], refs: dict[str, str], storage: str | None) -> dict[str, Any]:
    mk = models_key(refs)
    t = time.perf_counter()
    strokes_f = segment_page.submit(page, mk, storage)  # runs beside detect + read
    found = detect_page(page, mk, storage)
    t_detect = time.perf_counter()
    readings = read_page(page, found, mk, storage)
    t_read = time.perf_counter()
    strokes = strokes_f.result()
    t_seg = time.perf_counter()
    timings = {
        "detect": round((t_detect - t) * 1000, 1),
        "recognize": round((t_read - t_detect) * 1000, 1),
        "segment_wait": round((t_seg - t_read) * 1000, 1),
    }
    result_json = merge_page(page, found, readings, strokes, refs, timings)
    return persist_page(page, result_json, refs, storage)


def _publish(done: list[dict[str, Any]], refs: dict[str, str], storage: str | None) -> None:
    import json

    store = resolve_storage(storage)
    rows = []
    for d in done:
        result = json.loads(store.get(d["keys"]["json"]))
        for n, dim in enumerate(result["dimensions"], 1):
            rows.append(
                {"drawing": d["source"] + d["suffix"], "balloon": n, "text": dim["text"], "kind": dim["kind"],
                 "nominal": dim["nominal"], "upper": dim["upper"], "lower": dim["lower"], "fit": dim["fit"],
                 "count": dim["count"], "confidence": dim["confidence"]}
            )  # fmt: skip
        if d["png"].startswith(("http", "s3://", "file://")):
            create_link_artifact(link=d["png"], link_text=f"ballooned {d['source']}{d['suffix']}", key=None)
    create_table_artifact(table=rows, key=None, description="Dimensions found")
    lines = [f"| `{d['source']}{d['suffix']}` | {d['n_dimensions']} | {d['timings_ms']} | {d['json']} |" for d in done]
    models = "\n".join(f"- {k}: `{v}`" for k, v in sorted(refs.items()))
    create_markdown_artifact(
        markdown="# Drawings processed\n\n| drawing | dimensions | timings (ms) | result |\n|---|---|---|---|\n"
        + "\n".join(lines)
        + f"\n\n## Models\n{models}\n",
        description="dimflow summary",
    )


@flow(name="process-drawing", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def process_drawing(path: str, storage: str | None = None) -> list[dict[str, Any]]:
    """Every dimension of one drawing file (each PDF page a drawing) as the contract's JSON."""
    pages = load_drawing(path, storage)
    refs = resolve_models()
    done = [_page(p, refs, storage) for p in pages]
    _publish(done, refs, storage)
    for d in done:
        print(f"{d['source']}{d['suffix']}: {d['n_dimensions']} dimensions -> {d['json']}")
    return done


@flow(name="process-batch", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4))
def process_batch(paths: list[str], storage: str | None = None, batch_size: int = 8) -> dict[str, Any]:
    """Many drawings: files load concurrently, detector and readers see `batch_size` pages at a time,
    strokes are segmented per page beside them; a bad file is reported with its reason and does not
    stop the others."""
    loads = load_drawing.map(paths, unmapped(storage))
    refs = resolve_models()
    failed: dict[str, str] = {}
    pages: list[dict[str, Any]] = []
    for path, fut in zip(paths, loads, strict=True):
        fut.wait()
        if fut.state.is_completed():
            pages += fut.result()
        else:
            failed[path] = str(fut.state.result(raise_on_failure=False))
    mk = models_key(refs)
    strokes = segment_page.map(pages, unmapped(mk), unmapped(storage))  # per page, beside the batches
    found: list = []
    readings: list = []
    for start in range(0, len(pages), batch_size):  # batched inference, bounded memory
        chunk = pages[start : start + batch_size]
        chunk_found = detect_pages(chunk, mk, storage)
        found += chunk_found
        readings += read_pages(chunk, chunk_found, mk, storage)
    results = merge_page.map(pages, found, readings, strokes, unmapped(refs), unmapped({}))
    done = [f.result() for f in persist_page.map(pages, results, unmapped(refs), unmapped(storage))]
    _publish(done, refs, storage)
    for path, why in failed.items():
        print(f"FAILED {path}: {why}")
    return {"done": done, "failed": failed}
