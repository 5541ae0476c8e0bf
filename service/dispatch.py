"""Wake-up hints for idle workers through Redis: an accelerator, never the queue.

The queue is Prefect (service.runs); a hint lost to a Redis outage or restart only delays a job
until the next poll of Prefect, and a hint for a job another worker took is refused at claim time.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
HINTS_KEY = "dimflow:jobs:hints"


class Hints:
    """LPUSH a queued job's id; a worker BRPOPs it. Every call is bounded by its socket timeout."""

    def __init__(self, url: str, timeout_s: float = 0.5, block_s: float = 1.0) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.block_s = block_s
        # a blocking pop waits block_s on the server: the socket must outwait it (redis-py 8's default
        # socket_timeout of 5 s breaks a pop of 5 s or more); no client retries, one timeout per outage
        self._redis = redis.Redis.from_url(
            url, socket_timeout=block_s + timeout_s + 1, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )

    def push(self, job_id: str) -> bool:
        import redis

        try:
            self._redis.lpush(HINTS_KEY, job_id)
            return True
        except redis.RedisError as exc:
            log.warning("job hint not sent (Redis: %s); workers will find job %s by polling Prefect", exc, job_id)
            return False

    def pop(self) -> str | None:
        """A hinted job id, or None after block_s; redis.RedisError when Redis is unreachable."""
        got = self._redis.brpop([HINTS_KEY], timeout=self.block_s)
        return got[1].decode() if got else None
