"""Rate limits per subject and per client address, shared by every API process through Redis.

Moving windows (the `limits` library), so a burst at a window's edge cannot double the rate. When
Redis does not answer, an in-process limiter with the same limits takes over (logged and counted):
each API process then enforces the limit alone, looser across replicas but never open-ended.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from limits import parse
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from dimflow.settings import Settings

log = logging.getLogger(__name__)


class RateLimits:
    def __init__(self, settings: Settings, on_fallback: Callable[[], None] = lambda: None) -> None:
        self.items = {"submit": parse(settings.rate_limit_submit), "read": parse(settings.rate_limit_read),
                      "address": parse(settings.rate_limit_address)}  # fmt: skip
        self.shared = None
        if settings.redis_url:
            t = settings.redis_timeout_s
            storage = RedisStorage(settings.redis_url, socket_timeout=t, socket_connect_timeout=t)
            self.shared = MovingWindowRateLimiter(storage)
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self.on_fallback = on_fallback
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def check(self, kind: str, subject: str, address: str) -> tuple[float, str, object] | None:
        """Count one request of `kind` against its subject's limit and its address's; None when
        allowed, else (seconds until it would be: Retry-After, which limit, the limit). Synchronous:
        run it in a thread."""
        keys = [(self.items[kind], kind, subject), (self.items["address"], "address", address)]
        if self.shared is not None and (self._down_since is None or time.monotonic() - self._down_since > 5):
            try:
                return self._check(self.shared, keys)
            except Exception as exc:  # Redis down or timing out: the local limiter, never open-ended
                with self._lock:
                    if self._down_since is None:
                        log.warning("rate limits fall back to this process alone (Redis: %s)", exc)
                    self._down_since = time.monotonic()
                self.on_fallback()
        elif self.shared is not None:
            self.on_fallback()
        return self._check(self.local, keys)

    def _check(self, limiter: MovingWindowRateLimiter, keys: list) -> tuple[float, str, object] | None:
        for item, which, key in keys:
            if not limiter.hit(item, "dimflow", which, key):
                reset, _ = limiter.get_window_stats(item, "dimflow", which, key)
                return max(1.0, math.ceil(reset - time.time())), which, item
        if limiter is self.shared and self._down_since is not None:
            log.info("rate limits shared through Redis again")
            self._down_since = None
        return None
