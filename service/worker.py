"""Warm workers: processes that load the models once and then run job after job in-process.

Each job runs as the `process-job` flow inside the worker (`run_flow_async` on the run the API
created), so it costs an async flow's overhead (~0.2 s) rather than a served deployment's
subprocess with its model load (several seconds). A supervisor keeps N such processes alive; when
one dies mid-job it queues the job again or, past `job_attempts` runs, fails it with the reason,
so a job is never left `running` by a dead worker nor lost.

`dimflow api` runs a supervisor beside the API; `dimflow worker` runs one alone (another machine,
a GPU pool), sharing the API's Prefect server, storage and Redis.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
_ID_BYTES = 40


def work(index: int, current: Any, events: Any, tag: str | None = None) -> None:
    """A worker process: load the models, then claim and run jobs until terminated."""
    from dimflow.settings import configure_environment, get_settings
    from service.prefect_server import die_with_parent

    # a supervisor killed outright takes its workers with it, and its next start recovers their jobs. SIGKILL,
    # not SIGTERM: Prefect's engine turns a SIGTERM into a Crashed run, final, where the job must be run again
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor alone decides

    configure_environment()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker-{index} %(name)s %(message)s")
    for noisy in ("httpx", "mlflow", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from dimflow import champions

    t0 = time.perf_counter()
    models = champions.get_models()  # warm before the first job; a registry that is down ends the process
    events.put({"kind": "ready", "worker": index, "models": dict(models.refs), "load_s": time.perf_counter() - t0})

    def switched(before: str | None, new: Any, load_s: float) -> None:
        log.info("new champions loaded in %.1f s: %s (was %s)", load_s, new.key, before)
        events.put({"kind": "models", "worker": index, "models": dict(new.refs), "load_s": load_s, "was": before})

    # promotions and rollbacks reach this worker between two jobs, without a restart
    champions.follow_registry(get_settings().champion_poll_s, on_change=switched)
    asyncio.run(_serve(index, current, events, tag))


async def _serve(index: int, current: Any, events: Any, tag: str | None) -> None:
    from prefect.context import AsyncClientContext, SyncClientContext

    from dimflow.settings import get_settings
    from service.dispatch import Hints

    settings = get_settings()
    hints = Hints(settings.redis_url, settings.redis_timeout_s) if settings.redis_url else None
    # one Prefect client of each kind for the worker's life: without them every flow run builds an async
    # client and every task a sync one, each with its own TLS context (~0.15 s and ~0.05 s here)
    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create() as ctx:
            await _loop(ctx.client, hints, settings, current, events, index, tag)


async def _loop(client: Any, hints: Any, settings: Any, current: Any, events: Any, index: int, tag: str | None) -> None:
    import redis

    from service import runs

    next_poll, redis_down = 0.0, False
    while True:
        wanted: list[str] = []
        hinted_ok = False
        if hints is not None:
            try:
                hinted = await asyncio.to_thread(hints.pop)
                wanted, hinted_ok = ([hinted] if hinted else []), True
                if redis_down:
                    log.info("job hints back (Redis answers again)")
                    redis_down = False
            except redis.RedisError as exc:  # Redis down: Prefect alone, at the poll interval
                if not redis_down:
                    log.warning("no job hints (Redis: %s); polling Prefect every %.1f s", exc, settings.job_poll_s)
                    redis_down = True
                await asyncio.sleep(settings.job_poll_s)
        elif time.monotonic() < next_poll:
            await asyncio.sleep(next_poll - time.monotonic())
        try:
            if not wanted and (time.monotonic() >= next_poll or not hinted_ok):
                wanted = [str(r) for r in await runs.queued(client)]
                # with working hints this poll is only a safety net (a hint lost when Redis restarted)
                next_poll = time.monotonic() + settings.job_poll_s * (5 if hinted_ok else 1)
            for job_id in wanted:
                run = await runs.claim(client, job_id, tag)
                if run is not None:
                    await _run(run, current, events, index)
                    break  # a job done: look for hints first again, oldest-first order stays with Prefect
        except Exception as exc:  # Prefect unreachable: the jobs wait in it; try again after a pause
            log.warning("cannot take jobs (Prefect API: %s: %s); retrying in %.1f s", type(exc).__name__, exc,
                        settings.job_poll_s)  # fmt: skip
            await asyncio.sleep(settings.job_poll_s)


async def _run(run: Any, current: Any, events: Any, index: int) -> None:
    from prefect.flow_engine import run_flow_async

    from flows.process import process_job

    current.value = str(run.id).encode()
    started = time.time()
    event: dict[str, Any] = {"kind": "job", "worker": index, "job_id": str(run.id), "tags": list(run.tags or []),
                             "queued_s": started - run.created.timestamp()}  # fmt: skip
    try:
        outcome = await run_flow_async(process_job, flow_run=run, parameters=run.parameters)
        event.update(outcome="completed", detail=outcome)
    except Exception as exc:  # the run is Failed in Prefect with this reason; the worker goes on
        event.update(outcome="failed", reason=getattr(exc, "reason", type(exc).__name__), error=str(exc)[:500])
    finally:
        current.value = b""
    event["latency_s"] = time.time() - run.created.timestamp()
    event["run_s"] = time.time() - started
    events.put(event)
    if event["outcome"] == "completed":  # after the job's answer: the challengers never delay it
        await asyncio.to_thread(_shadow, event["detail"], (run.parameters or {}).get("storage"), index)


def _shadow(outcome: dict, storage: str | None, index: int) -> None:
    """The challengers' reading of the job's sampled pages (`DIMFLOW_SHADOW_SHARE`), recorded
    beside the results (`dimflow.shadow`); any failure here is logged, never the job's."""
    from dimflow import champions, shadow
    from dimflow.jobs import JobOutcome
    from dimflow.settings import get_settings
    from tasks.process import resolve_storage

    share = get_settings().shadow_share
    try:
        pages = [r for f in JobOutcome.model_validate(outcome).files if not f.cached for r in f.results
                 if shadow.picked(r.page.drawing_id, r.page.page, share)]  # fmt: skip
        if not pages:
            return
        challengers = champions.challenger_models()
        if challengers is None:
            return
        store = resolve_storage(storage)
        for r in pages:
            agreement = shadow.shadow_page(store, r.page, r.objects["json"], challengers)
            if agreement is not None:
                log.info("shadow %s p%d: %s", r.page.drawing_id[:12], r.page.page, agreement)
    except Exception:
        log.exception("worker %d: shadow run failed (the job's results stand)", index)


@dataclass
class _Slot:
    index: int
    current: Any
    process: Any = None
    restarts: int = 0
    started: float = 0.0
    ready: bool = False


@dataclass
class Supervisor:
    """Keeps `n` worker processes alive and recovers the job of one that dies."""

    n: int
    on_event: Callable[[dict[str, Any]], None] = lambda e: None
    name: str = "workers"  # with the host, tags the jobs these workers claim
    attempts: int = 2
    restart_backoff_s: float = 2.0
    slots: list[_Slot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ctx = mp.get_context("spawn")  # fork after torch/Prefect threads is unsafe
        self._events = self._ctx.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        import os

        # the workers share the cores: ONNX Runtime's idle threads must not spin on them (the children
        # read their settings from the environment they are spawned with)
        os.environ.setdefault("DIMFLOW_ONNX_SPINNING", "false")
        from dimflow.settings import get_settings

        lock = get_settings().data_dir.resolve() / "worker-compute.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("DIMFLOW_COMPUTE_LOCK", str(lock))  # model stages share the cores (devices.model_turn)
        self._recover_orphans()
        for i in range(self.n):
            slot = _Slot(i, self._ctx.Array("c", _ID_BYTES, lock=False))
            self.slots.append(slot)
            self._spawn(slot)
        for target in (self._watch, self._relay):
            t = threading.Thread(target=target, name=f"dimflow-{target.__name__.strip('_')}", daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def tag(self) -> str:
        from service.runs import worker_tag

        return worker_tag(self.name)

    def _recover_orphans(self) -> None:
        """Jobs this supervisor's workers held when it last ended without handing them back."""
        from prefect import get_client

        from service import runs

        try:
            with get_client(sync_client=True) as client:
                for run in runs.orphans(client, self.tag):
                    done = runs.recover(client, str(run.id), f"the workers on {self.tag.removeprefix('worker:')} "
                                        "stopped while running this job", self.attempts)  # fmt: skip
                    log.warning("job %s left active by this supervisor's last run: %s", run.id, done)
                    self.on_event({"kind": "crash", "job_id": str(run.id), "action": done, "reason": "worker_died"})
        except Exception as exc:
            log.error("orphaned jobs not checked (Prefect API: %s)", exc)

    def _spawn(self, slot: _Slot) -> None:
        slot.current.value = b""
        slot.ready = False
        slot.process = self._ctx.Process(target=work, args=(slot.index, slot.current, self._events, self.tag),
                                         name=f"dimflow-worker-{slot.index}", daemon=True)  # fmt: skip
        slot.process.start()
        slot.started = time.monotonic()

    def alive(self) -> int:
        return sum(1 for s in self.slots if s.process is not None and s.process.is_alive())

    def ready(self) -> int:
        return sum(1 for s in self.slots if s.ready and s.process is not None and s.process.is_alive())

    def _relay(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._events.get(timeout=0.5)
            except Exception:  # noqa: S112 - queue.Empty, or a queue closed at shutdown: nothing to log
                continue
            if event.get("kind") == "ready":
                self.slots[event["worker"]].ready = True
            try:
                self.on_event(event)
            except Exception:
                log.exception("worker event handler failed on %s", event.get("kind"))

    def _watch(self) -> None:
        from prefect import get_client

        while not self._stop.wait(0.5):
            for slot in self.slots:
                if slot.process is None or slot.process.is_alive() or self._stop.is_set():
                    continue
                code = slot.process.exitcode
                job_id = slot.current.value.decode()
                why = f"worker process {slot.index} died ({_describe_exit(code)})"
                log.error("%s%s", why, f" while running job {job_id}" if job_id else "")
                if job_id:
                    try:
                        with get_client(sync_client=True) as client:
                            from service import runs

                            done = runs.recover(client, job_id, f"{why} while running this job", self.attempts)
                    except Exception as exc:  # Prefect down: the run stays active; the next supervisor pass retries
                        log.error("could not recover job %s (%s); will retry", job_id, exc)
                        continue
                    self.on_event({"kind": "crash", "job_id": job_id, "action": done, "reason": "worker_died"})
                    if done == "retried":
                        self._hint(job_id)
                # a process that keeps dying (registry down, out of memory) is restarted with a growing pause
                pause = min(self.restart_backoff_s * 2 ** min(slot.restarts, 5), 60)
                if time.monotonic() - slot.started < 30:
                    slot.restarts += 1
                else:
                    slot.restarts = 0
                if self._stop.wait(pause if slot.restarts else 0):
                    return
                self.on_event({"kind": "restart", "worker": slot.index})
                self._spawn(slot)

    def _hint(self, job_id: str) -> None:
        from dimflow.settings import get_settings

        url = get_settings().redis_url
        if url:
            from service.dispatch import Hints

            Hints(url).push(job_id)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the workers; a job one was running is queued again for the next start (or another worker)."""
        self._stop.set()
        for slot in self.slots:  # SIGKILL: a SIGTERM would make Prefect's engine mark the run Crashed (final)
            if slot.process is not None and slot.process.is_alive():
                slot.process.kill()
        deadline = time.monotonic() + timeout_s
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join(max(deadline - time.monotonic(), 0.1))
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(2)
        pending = [s.current.value.decode() for s in self.slots if s.current.value]
        if pending:
            from prefect import get_client

            from service import runs

            try:
                with get_client(sync_client=True) as client:
                    for job_id in pending:
                        runs.recover(client, job_id, "the service stopped while running this job", self.attempts + 1)
            except Exception as exc:
                log.error("jobs %s left active: Prefect unreachable at shutdown (%s)", pending, exc)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
