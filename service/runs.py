"""Jobs as Prefect flow runs of `process-job`: Prefect is the queue's source of truth.

A submitted job is a flow run created Scheduled with the `dimflow-job` tag (its id is the job id),
so it shows in the Prefect UI from the moment it is accepted and survives the API, Redis or any
worker going away. A worker claims a run by moving it to Pending, which Prefect's orchestration
grants to exactly one claimant (PreventPendingTransitions), then runs the flow in its own warm
process. Redis, when configured, only carries a wake-up hint so an idle worker starts at once;
without it workers find queued runs by asking Prefect every `job_poll_s`.
"""

from __future__ import annotations

import logging
import socket
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import FlowCreate, FlowRunCreate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry, Crashed, Pending, Scheduled, to_state_create

from dimflow.jobs import JOB_TAG, JobFile
from flows.process import process_job

log = logging.getLogger(__name__)
QUEUED = [StateType.SCHEDULED]
ACTIVE = [StateType.PENDING, StateType.RUNNING]


def _jobs(*types: StateType) -> FlowRunFilter:
    return FlowRunFilter(
        tags=FlowRunFilterTags(all_=[JOB_TAG]), state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types)))
    )


_FLOW_IDS: dict[str, UUID] = {}  # Prefect API URL -> the process-job flow's id there


async def create(client: PrefectClient, files: list[JobFile], storage: str | None, owner: list[str]) -> FlowRun:
    """A queued job. Whose it is goes into the run's tags (`by:<sub>`, `tenant:<t>`: visible in the UI,
    and what reads of the job are checked against). One API call
    where Prefect's client makes two (it registers the flow before every run; its id is kept here)."""
    parameters = {"files": [f.model_dump() for f in files], "storage": storage}
    tags = [JOB_TAG, *owner]
    api = str(client.api_url)
    for attempt in range(2):
        if api not in _FLOW_IDS:
            flow = FlowCreate(name=process_job.name).model_dump(mode="json")
            got = await client.request("POST", "/flows/", json=flow)
            _FLOW_IDS[api] = UUID(got.json()["id"])
        body = FlowRunCreate(flow_id=_FLOW_IDS[api], flow_version=process_job.version, parameters=parameters,
                             tags=tags, state=to_state_create(Scheduled()))  # fmt: skip
        try:
            got = await client.request("POST", "/flow_runs/", json=body.model_dump(mode="json", exclude_unset=True))
        except httpx.HTTPStatusError as exc:  # the flow was deleted from Prefect since: register it again
            if attempt or exc.response.status_code >= 500:
                raise
            _FLOW_IDS.pop(api, None)
            continue
        run = FlowRun.model_validate(got.json())
        run.parameters = parameters
        return run
    raise AssertionError("unreachable")


async def read(client: PrefectClient, job_id: str) -> FlowRun | None:
    """The job's run; None when the id is not a job (malformed, unknown, or a run that is not a job)."""
    try:
        run = await client.read_flow_run(UUID(job_id))
    except (ValueError, ObjectNotFound):
        return None
    return run if JOB_TAG in (run.tags or []) else None


async def finished_task_names(client: PrefectClient, run_id: UUID) -> tuple[list[str], str | None]:
    """Names of the run's completed task runs, and the stage running now (latest started)."""
    tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200)
    done = [t.name for t in tasks if t.state_type == StateType.COMPLETED]
    running = sorted((t for t in tasks if t.state_type == StateType.RUNNING), key=lambda t: t.start_time or 0)
    return done, (running[-1].name if running else None)


async def queued(client: PrefectClient, limit: int = 10) -> list[UUID]:
    """Queued jobs, oldest first: what a worker takes when no hint reached it."""
    runs = await client.read_flow_runs(flow_run_filter=_jobs(*QUEUED), sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                                       limit=limit)  # fmt: skip
    return [r.id for r in runs]


async def depth(client: PrefectClient) -> int:
    return await client.count_flow_runs(flow_run_filter=_jobs(*QUEUED))


def worker_tag(name: str) -> str:
    """Which supervisor's workers run a job (a run tag): this host and the supervisor's name."""
    return f"worker:{socket.gethostname()}/{name}"


def orphans(client, tag: str) -> list[FlowRun]:
    """Active jobs claimed by workers of the supervisor `tag` names, read as it starts: its earlier
    life ended (killed, out of memory, the machine restarted) without finishing them."""
    return client.read_flow_runs(flow_run_filter=FlowRunFilter(
        tags=FlowRunFilterTags(all_=[JOB_TAG, tag]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE))), limit=200)  # fmt: skip


async def claim(client: PrefectClient, run_id: UUID | str, tag: str | None = None) -> FlowRun | None:
    """Take a queued job for this worker. Prefect accepts a move to Pending for one claimant only, but
    it also lets a finished run without a deployment go back to Pending: so only a run read as
    Scheduled (queued, or queued again after a crash) is proposed at all (a stale hint is dropped)."""
    try:
        run = await client.read_flow_run(UUID(str(run_id)))
    except (ValueError, ObjectNotFound):
        return None
    if run.state_type != StateType.SCHEDULED or JOB_TAG not in (run.tags or []):
        return None
    result = await client.set_flow_run_state(run.id, Pending(message="claimed by a dimflow worker"))
    if result.status.value != "ACCEPT" or result.state is None:
        return None
    if tag and tag not in run.tags:  # whose workers have it: a supervisor that restarts recovers its orphans
        run.tags = [*run.tags, tag]
        await client.update_flow_run(run.id, tags=run.tags)
    return run.model_copy(update={"state": result.state, "state_type": result.state.type,
                                  "state_name": result.state.name})  # fmt: skip


def recover(client, run_id: str, why: str, attempts: int) -> str:
    """After the worker process running `run_id` died: queue the job again, or fail it with the reason
    once it has had `attempts` runs. A synchronous Prefect client (the supervisor is not async).
    Returns what was done: "retried", "failed" or "finished" (it ended before the worker died)."""
    run = client.read_flow_run(UUID(run_id))
    if run.state is None or run.state.is_final():
        return "finished"
    runs = max(run.run_count, 1)
    if runs < attempts:
        client.set_flow_run_state(run.id, AwaitingRetry(message=f"{why}; run {runs + 1} of {attempts} queued"),
                                  force=True)  # fmt: skip
        return "retried"
    client.set_flow_run_state(run.id, Crashed(message=f"{why}; gave up after {runs} of {attempts} runs"), force=True)
    return "failed"
