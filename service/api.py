"""The upload API: drawings in, jobs out, results back; every job a Prefect flow run on warm workers.

Submission checks every file as processing would (type by content, size, pixels, pages) and
refuses the whole request with each file's reason before anything is stored; accepted files are
stored by content hash, then the job's run is created in Prefect (the queue) and idle workers are
woken through Redis when there is one. Status and results are read from Prefect and storage, so
any API replica can answer for any job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections import OrderedDict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import UploadFile

from dimflow import inputs
from dimflow.jobs import (
    JobFile,
    JobOutcome,
    JobResults,
    JobStatus,
    Submitted,
    UrisRequest,
    accept_upload,
    content_type,
    outcome_key,
    progress,
    stage_of,
    status_of,
    upload_key,
)
from dimflow.settings import Settings, get_settings
from dimflow.storage import S3Storage, Storage, StorageError, storage_from_url
from service import runs
from service.audit import ACTIONS, AuditLog, Entry, audit_url
from service.auth import Principal, require
from service.dispatch import Hints
from service.limits import RateLimits
from service.metrics import Metrics

log = logging.getLogger(__name__)

# a refusal's HTTP status by its reason: too big for us, not a type we read, or a file that is broken
_STATUS_BY_REASON = {"too_large": 413, "pixel_bomb": 413, "decompression_bomb": 413, "page_too_large": 413,
                     "too_many_pages": 413, "unsupported_type": 415}  # fmt: skip
# OpenAPI links: where a submission's job_id leads (clients and the API fuzzer follow them)
_JOB_LINKS = {name: {"operationId": op, "parameters": {"job_id": "$response.body#/job_id"}} for name, op in (
    ("status", "job_status_v1_jobs__job_id__get"), ("result", "job_result_v1_jobs__job_id__result_get"),
    ("balloons", "balloons_v1_jobs__job_id__balloons_png_get"),
    ("inspection", "inspection_v1_jobs__job_id__inspection_csv_get"))}  # fmt: skip
_NAME_OK = re.compile(r"[^\w.\- ()+,]")
_JSON_BODY_LIMIT = 64 * 1024
_PREFECT_TIMEOUT_S = 15.0  # a request waits this long on Prefect (its client retries inside), then gets a 503
PageQuery = Annotated[int, Query(ge=1, description="1-based position in the job's results")]


@dataclass
class Waiters:
    """Wakes requests waiting on a job when a worker of this process reports its end (others poll)."""

    loop: asyncio.AbstractEventLoop | None = None
    events: dict[str, asyncio.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, job_id: str) -> asyncio.Event:
        with self.lock:
            return self.events.setdefault(job_id, asyncio.Event())

    def drop(self, job_id: str) -> None:
        with self.lock:
            self.events.pop(job_id, None)

    def finished(self, job_id: str) -> None:  # from the supervisor's thread
        with self.lock:
            ev = self.events.get(job_id)
        if ev is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(ev.set)


@dataclass
class Finished:
    """Jobs that have ended, as last read: an ended run's state is final (a retry queues a run that
    has not ended), so a status or result read after the end costs no Prefect call. Filled when a
    worker of this process reports a completed job (the run is Completed by then) or a read finds
    one ended; bounded, oldest dropped."""

    keep: int = 2048
    jobs: OrderedDict[str, tuple[JobStatus, JobOutcome | None, list[str]]] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, status: JobStatus, outcome: JobOutcome | None, tags: list[str]) -> None:
        with self.lock:
            self.jobs[status.job_id] = (status, outcome, tags)
            while len(self.jobs) > self.keep:
                self.jobs.popitem(last=False)

    def get(self, job_id: str) -> tuple[JobStatus, JobOutcome | None, list[str]] | None:
        with self.lock:
            got = self.jobs.get(job_id)
        return None if got is None else (got[0].model_copy(deep=True), got[1], got[2])

    def completed(self, event: dict[str, Any]) -> None:
        """A worker's report of a completed job (from the supervisor's thread)."""
        outcome = JobOutcome.model_validate(event["detail"])
        self.put(JobStatus(job_id=event["job_id"], status="completed", stage="done", progress=1.0,
                           flow_run_id=event["job_id"], files=_files_of(outcome)), outcome,
                 event.get("tags", []))  # fmt: skip


def _files_of(outcome: JobOutcome) -> list[JobFile]:
    """A status's view of an ended job's files (their outcomes without the results)."""
    keep = set(JobFile.model_fields)
    return [JobFile.model_validate(f.model_dump(include=keep)) for f in outcome.files]


def _refusal(status: int, reason: str, message: str, files: list[dict] | None = None) -> HTTPException:
    detail: dict[str, Any] = {"reason": reason, "message": message}
    if files:
        detail["files"] = files
    return HTTPException(status, detail)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit:,} bytes")
        self.limit = limit


class BodyLimit:
    """Counts a request body as it streams in and stops it past `limit` bytes: a chunked upload (no
    Content-Length to refuse up front) is cut off there, never spooled whole to disk first."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def _principal(request: Request) -> Principal:
    """Who made this request (set by the auth dependency every job route has)."""
    return request.state.principal


def client_of(request: Request) -> str:
    """The client's address: the peer, or the first X-Forwarded-For hop when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in request.app.state.settings.trusted_proxies:
        return forwarded.split(",")[0].strip()[:64] or peer
    return peer


def allowed(scope: str, kind: str):
    """A route's guard: a valid token with `scope`, then the rate limit of `kind` for its subject
    and for the client's address (429 with Retry-After over it)."""
    check = require(scope)

    # a default, not Annotated: this module's annotations are strings, which cannot name a local
    async def guard(request: Request, who: Principal = Depends(check)) -> Principal:  # noqa: B008
        subject = f"{who.tenant or ''}/{who.sub}"
        over = await run_in_threadpool(request.app.state.limits.check, kind, subject, client_of(request))
        if over is not None:
            wait, which, limit = over
            request.app.state.metrics.rate_limited.labels(kind).inc()
            why = {"reason": "rate_limited", "message": f"over the {which} limit of {limit}; retry in {wait:.0f} s"}
            raise HTTPException(429, why, headers={"Retry-After": str(int(wait))})
        return who

    return guard


Submitter = Annotated[Principal, Depends(allowed("drawings:submit", "submit"))]
Reader = Annotated[Principal, Depends(allowed("drawings:read", "read"))]
Admin = Annotated[Principal, Depends(allowed("admin", "read"))]


def _clean_name(raw: str | None, index: int) -> str:
    """A sent file name fit for logs and results: its last path part, no control or odd characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _NAME_OK.sub("_", name).strip(" .")[:120]
    return name or f"file-{index + 1}"


def create_app(settings: Settings | None = None, workers: int | None = None, name: str = "api") -> FastAPI:
    """The API; with `workers` (default: the settings') warm worker processes supervised beside it."""
    s = settings or get_settings()
    storage_url = s.storage_url or str(s.data_dir.resolve() / "store")
    metrics = Metrics()
    waiters = Waiters()
    finished = Finished()
    n_workers = s.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from prefect import get_client

        from service.worker import Supervisor

        waiters.loop = asyncio.get_running_loop()
        await run_in_threadpool(app.state.audit.migrate)  # the audit log exists before any request is served
        app.state.store = storage_from_url(storage_url)
        app.state.hints = Hints(s.redis_url, s.redis_timeout_s) if s.redis_url else None
        supervisor = None

        def on_event(event: dict[str, Any]) -> None:
            metrics.on_worker_event(event)
            if event.get("kind") == "job" and event.get("outcome") == "completed":
                finished.completed(event)
            if event.get("kind") in ("job", "crash"):
                waiters.finished(event["job_id"])

        if n_workers:
            supervisor = Supervisor(n_workers, on_event=on_event, attempts=s.job_attempts, name=app.state.name)
            supervisor.start()
        app.state.supervisor = supervisor
        async with get_client() as client:
            app.state.prefect = client
            try:
                yield
            finally:
                if supervisor is not None:
                    await run_in_threadpool(supervisor.stop)

    about = "Engineering drawings in, every dimension out: the result contract's JSON per page."
    app = FastAPI(title="dimflow", version="1", lifespan=lifespan, description=about)
    app.state.metrics = metrics
    app.state.settings = s
    app.state.name = name
    app.state.limits = RateLimits(s, on_fallback=metrics.rate_limit_fallback.inc)
    app.state.audit = AuditLog(audit_url(s))
    unaudited = {"/healthz", "/readyz", "/metrics"}  # probes, many a minute; everything else is recorded

    body_limit = s.max_bytes * s.max_upload_files + 2**20  # the files one job may hold, and multipart framing
    app.add_middleware(BodyLimit, limit=body_limit)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        metrics.refused.labels("too_large").inc()
        request.state.refusal = "too_large"
        return JSONResponse({"detail": {"reason": "too_large", "message": f"{exc}: what {s.max_upload_files} files "
                             f"of {s.max_bytes:,} bytes may take; nothing was stored"}}, status_code=413)  # fmt: skip

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        """Every refusal's reason also goes to the audit log."""
        detail = exc.detail
        request.state.refusal = detail.get("reason") if isinstance(detail, dict) else str(detail)
        return await http_exception_handler(request, exc)

    def _action(method: str, route: str, status: int) -> str:
        if method == "POST" and route == "/v1/jobs":
            return "submit"  # refused ones included, whatever the reason
        if status == 401:
            return "token_refused"
        if status == 429:
            return "rate_limited"
        if route == "/v1/jobs/{job_id}":
            return "read_status"
        if route.startswith("/v1/jobs/{job_id}/"):
            return "read_result"
        if route.startswith("/v1/audit"):
            return "admin"
        return "other"

    async def audit(request: Request, status: int) -> None:
        route = getattr(request.scope.get("route"), "path", request.url.path[:200])
        st = request.state
        who: Principal | None = getattr(st, "principal", None)
        entry = Entry(action=_action(request.method, route, status), method=request.method, route=route,
                      status=status, client=client_of(request), subject=who.sub if who else "",
                      tenant=who.tenant if who else None,
                      job_id=getattr(st, "job_id", None) or request.path_params.get("job_id"),
                      drawings=getattr(st, "drawings", []), models=getattr(st, "models", None),
                      detail=getattr(st, "auth_refused", None) or getattr(st, "refusal", None))  # fmt: skip
        try:
            await run_in_threadpool(request.app.state.audit.record, entry)
        except Exception as exc:  # counted and logged; /readyz reports the audit log down
            metrics.audit_failures.inc()
            log.error("audit entry not written (%s): %s", exc, entry)

    @app.middleware("http")
    async def count(request: Request, call_next):
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.request_seconds.labels(request.method, route).observe(time.perf_counter() - t0)
            if request.url.path not in unaudited:
                await audit(request, status)

    def store_of(request: Request) -> Storage:
        return request.app.state.store

    # ------------------------------------------------------------------ submit

    async def _files_from_form(request: Request) -> list[tuple[str, bytes]]:
        try:
            form = await request.form(max_files=s.max_upload_files, max_fields=s.max_upload_files + 10)
        except BodyTooLarge:
            raise
        except Exception as exc:  # starlette: too many files/fields, a malformed body
            raise _refusal(400, "bad_multipart", f"the multipart body cannot be read ({exc})") from None
        parts = form.getlist("file")
        if not parts:
            raise _refusal(400, "no_file", "send the drawings as one or more multipart parts named `file`")
        out = []
        for i, part in enumerate(parts):
            if not isinstance(part, UploadFile):
                raise _refusal(400, "not_a_file", f"part {i + 1} named `file` is a form field, not a file upload")
            data = await part.read(s.max_bytes + 1)
            out.append((_clean_name(part.filename, i), data))
        return out

    def _refuse_if_any(refused: list[dict], what: str) -> None:
        """Refuse the whole request when any part was refused: counted by reason, the first one's status."""
        if not refused:
            return
        for r in refused:
            metrics.refused.labels(r["reason"]).inc()
        first = refused[0]
        raise _refusal(_STATUS_BY_REASON.get(first["reason"], 422), first["reason"],
                       f"{len(refused)} {what}: {first['message']}", refused)  # fmt: skip

    def _check_all(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes, str, str]]:
        limits, checked, refused = s.limits(), [], []
        for name, data in files:
            try:
                kind, drawing_id = accept_upload(data, name, limits)
                checked.append((name, data, kind, drawing_id))
            except inputs.BadInput as exc:
                refused.append({"name": name, "reason": exc.reason, "message": str(exc)})
        _refuse_if_any(refused, f"of {len(files)} files refused; nothing was stored")
        return checked

    def _check_uris(uris: list[str]) -> list[JobFile]:
        limits, out, refused = s.limits(), [], []
        for uri in uris:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            name = key.rsplit("/", 1)[-1]
            try:
                if not uri.startswith("s3://") or not bucket or not key:
                    raise inputs.BadInput("bad_uri", f"{uri!r} is not an s3://bucket/key URI")
                size = S3Storage(bucket=bucket).size(key)
                if size > limits.max_bytes:
                    raise inputs.too_large(name, size, limits)
            except inputs.BadInput as exc:
                refused.append({"name": uri, "reason": exc.reason, "message": str(exc)})
                continue
            except (FileNotFoundError, ValueError) as exc:
                refused.append({"name": uri, "reason": "missing", "message": f"{uri}: no such object ({exc})"})
                continue
            except StorageError as exc:
                raise _refusal(503, "storage_unavailable", f"{uri} cannot be checked ({exc}); nothing was queued") \
                    from None  # fmt: skip
            out.append(JobFile(name=name or uri, source=uri))
        _refuse_if_any(refused, f"of {len(uris)} URIs refused")
        return out

    @app.post("/v1/jobs", status_code=202, response_model=Submitted, tags=["jobs"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                      "file": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
                  "application/json": {"schema": UrisRequest.model_json_schema()}}}},
              responses={202: {"description": "queued", "links": _JOB_LINKS}, 413: {"description": "too large"},
                         415: {"description": "not a drawing"},
                         422: {"description": "a damaged or unusable file"}})  # fmt: skip
    async def submit(request: Request, who: Submitter) -> Response:
        """Queue drawings (multipart parts named `file`, or JSON `{"uris": [...]}`); 202 with the job's URL."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > body_limit:
            metrics.refused.labels("too_large").inc()
            raise _refusal(413, "too_large", f"the request is {int(length):,} bytes, over what "
                           f"{s.max_upload_files} files of {s.max_bytes:,} bytes may take")  # fmt: skip
        if ctype == "multipart/form-data":
            sent = await _files_from_form(request)
            if len(sent) > s.max_upload_files:
                raise _refusal(413, "too_many_files", f"{len(sent)} files; one job takes at most {s.max_upload_files}")
            checked = await run_in_threadpool(_check_all, sent)
            store = store_of(request)
            files = []
            try:
                request.state.drawings = [c[3] for c in checked]
                for name, data, kind, drawing_id in checked:
                    key = upload_key(drawing_id, kind)
                    await run_in_threadpool(store.put, key, data, content_type(kind))
                    files.append(JobFile(name=name, drawing_id=drawing_id, source=f"store:{key}"))
            except StorageError as exc:
                raise _refusal(503, "storage_unavailable", f"the upload could not be stored ({exc}); nothing was "
                               "queued, send it again") from None  # fmt: skip
        elif ctype == "application/json":
            body = await request.body()
            if len(body) > _JSON_BODY_LIMIT:
                raise _refusal(413, "too_large", f"a JSON body may hold at most {_JSON_BODY_LIMIT} bytes")
            try:
                req = UrisRequest.model_validate_json(body)
            except ValueError as exc:
                raise _refusal(422, "bad_json", f'expected {{"uris": ["s3://bucket/key", ...]}} ({exc})') from None
            files = await run_in_threadpool(_check_uris, req.uris)
        else:
            metrics.refused.labels("unsupported_media_type").inc()
            raise _refusal(415, "unsupported_media_type", f"send multipart/form-data (parts named `file`) or "
                           f"application/json with s3:// URIs, not {ctype or 'no content type'}")  # fmt: skip
        try:
            run = await asyncio.wait_for(runs.create(request.app.state.prefect, files, storage_url, who.owner_tags()),
                                         _PREFECT_TIMEOUT_S)  # fmt: skip
        except Exception as exc:  # Prefect unreachable or refusing: nothing is queued, the client may retry
            log.error("job not created: %s", exc)
            raise _refusal(503, "prefect_unavailable", f"the job could not be queued (Prefect API: "
                           f"{type(exc).__name__}); nothing was queued, send it again") from None  # fmt: skip
        job_id = str(run.id)
        request.state.job_id = job_id
        metrics.submitted.inc()
        if request.app.state.hints is not None:
            await run_in_threadpool(request.app.state.hints.push, job_id)
        url = str(request.url_for("job_status", job_id=job_id))
        return JSONResponse(Submitted(job_id=job_id, status_url=url).model_dump(), status_code=202,
                            headers={"Location": url})  # fmt: skip

    # ------------------------------------------------------------------ status and results

    async def _run_or_404(request: Request, job_id: str):
        try:
            run = await asyncio.wait_for(runs.read(request.app.state.prefect, job_id), _PREFECT_TIMEOUT_S)
        except Exception as exc:
            raise _refusal(503, "prefect_unavailable", f"job state cannot be read (Prefect API: {exc})") from None
        if run is None or not _principal(request).may_see(run.tags):  # another's job: as if there were none
            raise _refusal(404, "no_such_job", f"no job {job_id}")
        return run

    def _outcome(store: Storage, job_id: str) -> JobOutcome | None:
        try:
            return JobOutcome.model_validate_json(store.get(outcome_key(job_id)))
        except FileNotFoundError:
            return None

    async def _status(request: Request, job_id: str, detail: bool = True) -> JobStatus:
        return (await _job(request, job_id, detail))[0]

    async def _job(request: Request, job_id: str, detail: bool = True) -> tuple[JobStatus, JobOutcome | None]:
        """The job's status, and its stored outcome once it has ended (read once, for both)."""
        if (ended := finished.get(job_id)) is not None:
            if not _principal(request).may_see(ended[2]):
                raise _refusal(404, "no_such_job", f"no job {job_id}")
            return ended[0], ended[1]
        run = await _run_or_404(request, job_id)
        state = status_of(run.state_type.value if run.state_type else "SCHEDULED")
        files = [JobFile.model_validate(f) for f in run.parameters.get("files", [])]
        out = JobStatus(job_id=job_id, status=state, flow_run_id=str(run.id), files=files)
        outcome = None
        if state == "queued":
            out.stage = "retrying" if run.state_name == "AwaitingRetry" else "queued"
        elif state == "running":
            if detail:  # a long poll's repeated looks skip the task-run query
                done, current = await runs.finished_task_names(request.app.state.prefect, run.id)
                out.stage = stage_of(current) if current else "starting"
                out.progress = progress(len(files), done)
        else:
            outcome = await run_in_threadpool(_outcome, store_of(request), job_id)
            if outcome is not None:
                out.files = _files_of(outcome)
            out.stage = "done"
            out.progress = 1.0 if state == "completed" else 0.0
            if state == "failed":
                out.error = (run.state.message if run.state else None) or "failed"
            if outcome is not None or state == "failed":
                finished.put(out.model_copy(deep=True), outcome, list(run.tags or []))
        return out, outcome

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus, tags=["jobs"], name="job_status")
    async def job_status(
        request: Request, job_id: str, _: Reader,
        wait: Annotated[float, Query(ge=0, le=30, description="seconds to wait for the job to finish")] = 0,
    ) -> JobStatus:  # fmt: skip
        """The job's state, stage and progress; with `wait`, answers as soon as it finishes (long poll)."""
        deadline = time.monotonic() + wait
        ev = waiters.get(job_id) if wait else None
        try:
            out = await _status(request, job_id, detail=not wait)
            while not out.done and (left := deadline - time.monotonic()) > 0:
                # a worker of this process reports the end at once; a job on another machine's worker is
                # seen by asking Prefect every 2 s (each waiting client costs the Prefect server CPU)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ev.wait(), timeout=min(left, 2.0))
                out = await _status(request, job_id, detail=False)
            return out if out.done or not wait else await _status(request, job_id)
        finally:
            if ev is not None:
                waiters.drop(job_id)

    async def _completed(request: Request, job_id: str) -> JobOutcome:
        out, outcome = await _job(request, job_id, detail=False)
        if out.status != "completed":
            raise _refusal(409, f"job_{out.status}", f"job {job_id} is {out.status}"
                           + (f": {out.error}" if out.error else "; ask again when it has completed"))  # fmt: skip
        if outcome is None:
            raise _refusal(404, "no_outcome", f"job {job_id} completed but its outcome is missing from storage")
        request.state.drawings = [f.drawing_id for f in outcome.files if f.drawing_id]
        request.state.models = outcome.models
        return outcome

    @app.get("/v1/jobs/{job_id}/result", response_model=JobResults, tags=["jobs"])
    async def job_result(request: Request, job_id: str, _: Reader) -> Response:
        """Every page's result (the contract's JSON), in file then page order."""
        outcome = await _completed(request, job_id)
        store = store_of(request)

        def load() -> bytes:
            parts = [store.get(r.objects["json"]) for f in outcome.files for r in f.results]
            return b'{"job_id":"' + job_id.encode() + b'","results":[' + b",".join(parts) + b"]}"

        return Response(await run_in_threadpool(load), media_type="application/json")

    async def _page_object(request: Request, job_id: str, page: int, kind: str) -> bytes:
        outcome = await _completed(request, job_id)
        pages = [r for f in outcome.files for r in f.results]
        if not 1 <= page <= len(pages):
            raise _refusal(404, "no_such_page", f"job {job_id} has pages 1..{len(pages)}, not {page}")
        return await run_in_threadpool(store_of(request).get, pages[page - 1].objects[kind])

    @app.get("/v1/jobs/{job_id}/balloons.png", tags=["jobs"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})  # fmt: skip
    async def balloons(request: Request, job_id: str, _: Reader, page: PageQuery = 1) -> Response:
        """The page with a numbered balloon on every dimension."""
        return Response(await _page_object(request, job_id, page, "png"), media_type="image/png")

    @app.get("/v1/jobs/{job_id}/inspection.csv", tags=["jobs"], response_class=Response,
             responses={200: {"content": {"text/csv": {}}}})  # fmt: skip
    async def inspection(request: Request, job_id: str, _: Reader, page: PageQuery = 1) -> Response:
        """The page's inspection table, one row per balloon."""
        return Response(await _page_object(request, job_id, page, "csv"), media_type="text/csv")

    # ------------------------------------------------------------------ operations

    @app.get("/v1/audit", tags=["operations"])
    async def audit_entries(
        request: Request,
        _: Admin,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        since: Annotated[datetime | None, Query(description="ISO 8601; entries at or after it")] = None,
        subject: str | None = None,
        action: Annotated[str | None, Query(description=", ".join(ACTIONS))] = None,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """The newest audit entries, oldest first (admin only; every request here is audited too)."""
        rows = await run_in_threadpool(request.app.state.audit.tail, limit, since, subject, action, job_id)
        return {"entries": rows}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: Prefect, storage and the registry reachable (else 503, saying which); Redis and
        the warm workers are reported, and a Redis outage only degrades (jobs run uncached)."""
        checks = await readiness(request)
        required = ("prefect", "storage", "registry", "audit")
        ready = all(checks[k] == "ok" for k in required)
        degraded = [k for k, v in checks.items() if v != "ok" and k not in required and v != "not configured"]
        return JSONResponse({"ready": ready, "degraded": degraded, "checks": checks}, status_code=200 if ready else 503)

    async def readiness(request: Request) -> dict[str, str]:
        async def prefect() -> str:
            err = await request.app.state.prefect.api_healthcheck()
            return "ok" if err is None else f"down: {err}"

        def storage() -> str:
            store_of(request).exists("readyz/probe")
            return "ok"

        def registry() -> str:
            from dimflow.champions import champion_versions

            champion_versions()
            return "ok"

        def redis() -> str:
            from dimflow.cache import result_cache

            cache = result_cache(s)
            if cache is None:
                return "not configured"
            err = cache.ping()
            return "ok" if err is None else f"down: {err} (jobs run uncached)"

        async def bounded(name: str, fn, timeout: float = 5.0) -> tuple[str, str]:
            try:
                coro = fn() if asyncio.iscoroutinefunction(fn) else run_in_threadpool(fn)
                return name, await asyncio.wait_for(coro, timeout)
            except TimeoutError:
                return name, f"down: no answer within {timeout:g} s"
            except Exception as exc:
                return name, f"down: {type(exc).__name__}: {exc}"[:300]

        def audit_log() -> str:
            request.app.state.audit.ping()
            return "ok"

        got = dict(await asyncio.gather(bounded("prefect", prefect), bounded("storage", storage),
                                        bounded("registry", registry), bounded("redis", redis),
                                        bounded("audit", audit_log)))  # fmt: skip
        sup = request.app.state.supervisor
        if sup is not None:
            got["workers"] = "ok" if sup.ready() else f"down: 0 of {sup.n} warm workers ready"
        else:
            got["workers"] = "not configured"
        return got

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics_text(request: Request) -> Response:
        """Prometheus text format."""
        try:
            metrics.queue_depth.set(await asyncio.wait_for(runs.depth(request.app.state.prefect), 2.0))
        except Exception as exc:
            log.warning("queue depth unknown: %s", exc)
        sup = request.app.state.supervisor
        metrics.workers.set(sup.ready() if sup is not None else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
