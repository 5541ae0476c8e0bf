"""Whole-drawing results by content, in Redis: a file's sha256 and the champions' exact versions ->
where its pages' results are stored.

A resubmitted drawing is answered from here without running a model (`dimflow process` looks
here before starting a flow run; a service job in its first task). Redis is an accelerator, never a dependency: when
it is down, slow or holds something unreadable, a lookup is a miss and a store is skipped, each
logged and counted, and processing goes on. Only results the champions themselves produced are
kept (a run that fell back past a broken champion is not), so a hit always means "what the current
champions say about these bytes".
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

from pydantic import TypeAdapter, ValidationError

from dimflow.champions import ROLES
from dimflow.records import StoredResult
from dimflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

_RESULTS = TypeAdapter(list[StoredResult])
KEY_VERSION = "v1"  # bump when what an entry holds changes shape


def champions_key(versions: dict[str, str]) -> str:
    """The model versions a cached result depends on, as "role=name/version" pairs (no notes, no
    text engine or device: the registry's champions are what a lookup can know before loading)."""
    return ",".join(f"{role}={versions[role]}" for role in ROLES)


class ResultCache:
    """Cached `StoredResult` lists in Redis, each call bounded by `timeout_s`."""

    def __init__(self, url: str, ttl_s: int, timeout_s: float = 0.5) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url, self.ttl_s = url, ttl_s
        # no retries inside the client: a cache that is down must cost one timeout, not several
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        self.counts: Counter[str] = Counter()  # hit, miss, stored, error: for metrics

    @staticmethod
    def key(drawing_id: str, models: str, storage: str) -> str:
        """One entry per file content, model versions and result storage (another store holds other keys)."""
        scope = hashlib.sha256(f"{models}|{storage}".encode()).hexdigest()[:24]
        return f"dimflow:results:{KEY_VERSION}:{drawing_id}:{scope}"

    def get(self, drawing_id: str, models: str, storage: str) -> list[StoredResult] | None:
        import redis

        try:
            raw = self._redis.get(self.key(drawing_id, models, storage))
        except redis.RedisError as exc:
            self.counts["error"] += 1
            log.warning("result cache at %s unavailable, processing uncached: %s", self.url, exc)
            return None
        if raw is None:
            self.counts["miss"] += 1
            return None
        try:
            found = _RESULTS.validate_json(raw)
        except ValidationError as exc:  # written by another version, or damaged: a miss, not a failure
            self.counts["error"] += 1
            log.warning("unreadable result cache entry for %s, ignored: %s", drawing_id, exc.errors()[:1])
            return None
        self.counts["hit"] += 1
        return found

    def put(self, drawing_id: str, models: str, storage: str, results: list[StoredResult]) -> bool:
        """Remember a drawing's results; False (logged) when Redis did not take them."""
        import redis

        try:
            self._redis.set(self.key(drawing_id, models, storage), _RESULTS.dump_json(results), ex=self.ttl_s)
        except redis.RedisError as exc:
            self.counts["error"] += 1
            log.warning("result cache at %s unavailable, result not cached: %s", self.url, exc)
            return False
        self.counts["stored"] += 1
        return True

    def ping(self) -> str | None:
        """None when Redis answers, else why not (for readiness checks)."""
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            return f"redis at {self.url}: {exc}"
        return None


def result_cache(settings: Settings | None = None) -> ResultCache | None:
    """The configured cache (`DIMFLOW_REDIS_URL`), or None when there is none."""
    s = settings or get_settings()
    return ResultCache(s.redis_url, s.cache_ttl_s, s.redis_timeout_s) if s.redis_url else None


def cacheable(refs: dict[str, str]) -> bool:
    """Results are cached only when every model that ran was its champion (no fallback note)."""
    return not any(k.endswith("_note") for k in refs)

