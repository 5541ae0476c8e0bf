"""The service's Prometheus metrics, in a registry of its own (one per app, so tests can start several)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("dimflow_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)  # fmt: skip
        self.request_seconds = Histogram("dimflow_http_request_seconds", "HTTP request latency by route",
                                         ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.job_seconds = Histogram("dimflow_job_seconds", "Job latency, submit to result", buckets=LATENCY_BUCKETS,
                                     registry=r)  # fmt: skip
        self.stage_seconds = Histogram("dimflow_stage_seconds", "Per-page stage latency", ["stage"],
                                       buckets=STAGE_BUCKETS, registry=r)  # fmt: skip
        self.jobs = Counter("dimflow_jobs", "Jobs by outcome and failure reason", ["outcome", "reason"], registry=r)
        self.submitted = Counter("dimflow_jobs_submitted", "Jobs accepted", registry=r)
        self.refused = Counter("dimflow_uploads_refused", "Uploads refused, by reason", ["reason"], registry=r)
        self.queue_depth = Gauge("dimflow_queue_depth", "Jobs queued in Prefect, not yet claimed", registry=r)
        self.cache = Counter("dimflow_cache_lookups", "Result cache lookups by drawing", ["result"], registry=r)
        self.confidence = Histogram("dimflow_dimension_confidence", "Confidence of each dimension returned",
                                    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
                                    registry=r)  # fmt: skip
        self.models = Info("dimflow_models", "Model versions the workers run", registry=r)
        self.rate_limited = Counter("dimflow_rate_limited", "Requests refused over a rate limit", ["kind"], registry=r)
        self.rate_limit_fallback = Counter("dimflow_rate_limit_fallback", "Limit checks made in-process (Redis down)",
                                           registry=r)  # fmt: skip
        self.audit_failures = Counter("dimflow_audit_write_failures", "Audit entries that could not be written",
                                      registry=r)  # fmt: skip
        self.workers = Gauge("dimflow_workers_ready", "Warm worker processes ready for jobs", registry=r)
        self.worker_restarts = Counter("dimflow_worker_restarts", "Worker processes restarted", registry=r)
        self.recovered = Counter("dimflow_jobs_recovered", "Jobs whose worker died, by action", ["action"],
                                 registry=r)  # fmt: skip

    def on_worker_event(self, event: dict[str, Any]) -> None:
        """What a worker process reports: ready (with its models), new champions loaded, a job's end, a
        crash, a restart."""
        kind = event.get("kind")
        if kind in ("ready", "models"):  # a worker warm, or one that switched to new champions
            self.models.info({k: str(v) for k, v in event.get("models", {}).items()})
        elif kind == "restart":
            self.worker_restarts.inc()
        elif kind == "crash":
            self.recovered.labels(event.get("action", "unknown")).inc()
            if event.get("action") == "failed":
                self.jobs.labels("failed", event.get("reason", "worker_died")).inc()
        elif kind == "job":
            outcome = event.get("outcome", "failed")
            self.jobs.labels(outcome, "" if outcome == "completed" else str(event.get("reason", "unknown"))).inc()
            self.job_seconds.observe(max(float(event.get("latency_s", 0.0)), 0.0))
            detail = event.get("detail") or {}
            for f in detail.get("files", []):
                if f.get("error"):
                    continue
                self.cache.labels("hit" if f.get("cached") else "miss").inc()
                for c in f.get("confidences", []):
                    self.confidence.observe(c)
                if not f.get("cached"):
                    for r in f.get("results", []):
                        for stage, ms in r.get("timings_ms", {}).items():
                            if not stage.endswith("_cached"):
                                self.stage_seconds.labels(stage).observe(ms / 1000)
