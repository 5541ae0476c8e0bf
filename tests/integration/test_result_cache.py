"""The Redis result cache against a real redis-server started here: a hit gives back what was
stored, anything else is a miss, and a Redis that is down or damaged never fails a caller."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dimflow.cache import ResultCache, cacheable, champions_key
from dimflow.records import PageRef, StoredResult
from tests.redis_server import redis_server

pytestmark = pytest.mark.integration

MODELS = champions_key(
    {"detector": "drawing-detector/1", "reader": "callout-reader/2", "segmenter": "drawing-segmenter/1"}
)
SHA = "b" * 64


def _done(page: int = 1) -> StoredResult:
    ref = PageRef(drawing_id=SHA, source="store:uploads/x.pdf", page=page, n_pages=2, key=f"pages/{SHA}/{page}.png",
                  dpi=200.0, width=2339, height=1654)  # fmt: skip
    objects = {e: f"results/{SHA}/p{page}-m-r/result.{e}" for e in ("json", "png", "csv")}
    return StoredResult(page=ref, objects=objects, uris={k: f"file:///s/{v}" for k, v in objects.items()},
                        n_dimensions=7, timings_ms={"detect": 200.0}, written=True)  # fmt: skip


@pytest.fixture
def server(tmp_path: Path):
    with redis_server(tmp_path) as (url, proc):
        yield url, proc


def test_a_stored_drawing_comes_back_and_nothing_else_does(server) -> None:
    url, _ = server
    cache = ResultCache(url, ttl_s=3600)
    assert cache.ping() is None
    assert cache.get(SHA, MODELS, "file:///s/results") is None
    assert cache.put(SHA, MODELS, "file:///s/results", [_done(1), _done(2)])
    assert cache.get(SHA, MODELS, "file:///s/results") == [_done(1), _done(2)]
    other_models = MODELS.replace("callout-reader/2", "callout-reader/3")
    assert cache.get(SHA, other_models, "file:///s/results") is None  # a new champion: not the same answer
    assert cache.get(SHA, MODELS, "s3://bucket/results") is None  # another store holds other objects
    assert cache.get("c" * 64, MODELS, "file:///s/results") is None
    assert dict(cache.counts) == {"miss": 4, "stored": 1, "hit": 1}
    assert 3500 < cache._redis.ttl(cache.key(SHA, MODELS, "file:///s/results")) <= 3600


def test_an_unreadable_entry_is_a_miss(server) -> None:
    url, _ = server
    cache = ResultCache(url, ttl_s=60)
    cache._redis.set(cache.key(SHA, MODELS, "s"), b'[{"page": "not a page"}]')
    assert cache.get(SHA, MODELS, "s") is None and cache.counts["error"] == 1


def test_a_redis_that_stops_costs_a_timeout_and_fails_nobody(server) -> None:
    url, proc = server
    cache = ResultCache(url, ttl_s=60, timeout_s=0.5)
    assert cache.put(SHA, MODELS, "s", [_done()])
    proc.terminate()
    proc.wait(timeout=10)
    t0 = time.monotonic()
    assert cache.get(SHA, MODELS, "s") is None
    assert cache.put(SHA, MODELS, "s", [_done()]) is False
    assert time.monotonic() - t0 < 5  # refused connections, no retries inside the client
    assert cache.counts["error"] == 2 and "redis at" in (cache.ping() or "")


def test_only_what_the_champions_produced_is_cached() -> None:
    assert cacheable({"detector": "drawing-detector/1", "reader": "callout-reader/1"})
    assert not cacheable({"reader": "callout-reader/1", "reader_note": "fell back to callout-reader/1: ..."})
    assert MODELS == "detector=drawing-detector/1,reader=callout-reader/2,segmenter=drawing-segmenter/1"
