"""A service job: one or more uploaded drawings processed together, as the API and its client see it.

Plain records and rules (no orchestration): what a submission stores before anything runs, where a
job's outcome lives, how an orchestrator's run state reads as a job status, and how far a job has
got. The service keeps the run state in Prefect (a job is one flow run) and the outcome in the
result storage; both sides of the API (server and `dimflow.client`) share these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dimflow import inputs
from dimflow.records import StoredResult

JobState = Literal["queued", "running", "completed", "failed"]
JOB_TAG = "dimflow-job"  # every job's run carries it; a run without it is not a job
# what a page goes through, in order; a job's progress counts these
STAGES = ("load", "detect", "read", "segment", "merge")  # merge also stores the outputs
_TASK_STAGE = {
    "load_drawing": "load", "detect_page": "detect", "detect_pages": "detect", "read_page": "read",
    "read_pages": "read", "segment_page": "segment", "merge_page": "merge", "persist_page": "persist",
    "start_job": "start", "resolve_models": "models", "finish_job": "finish",
}  # fmt: skip
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "tiff": "image/tiff", "bmp": "image/bmp",
                  "pdf": "application/pdf"}  # fmt: skip


class JobFile(BaseModel):
    """One drawing of a job: the name it was sent under, its content hash and where it is kept."""

    name: str
    drawing_id: str | None = Field(default=None, description="sha256 of the file's bytes")
    source: str = Field(description="`store:<key>` of the stored upload, or the `s3://` URI it was sent as")
    pages: int | None = Field(default=None, description="pages processed (known once the file is loaded)")
    error: str | None = Field(default=None, description="why this file was not processed")


class FileOutcome(JobFile):
    reason: str | None = Field(default=None, description="machine code of the error (corrupt, too_large, ...)")
    cached: bool = False
    results: list[StoredResult] = Field(default_factory=list)
    confidences: list[float] = Field(default_factory=list)


class JobOutcome(BaseModel):
    """What a finished job produced, stored once as `outcome_key(job_id)` by the run that did it."""

    job_id: str
    files: list[FileOutcome]
    models: dict[str, str] = Field(default_factory=dict)
    stage_ms: dict[str, float] = Field(default_factory=dict, description="summed over the job's pages")

    @property
    def failed(self) -> bool:
        return bool(self.files) and all(f.error for f in self.files)


class Submitted(BaseModel):
    job_id: str
    status_url: str


class JobStatus(BaseModel):
    job_id: str
    status: JobState
    stage: str | None = None
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    error: str | None = None
    flow_run_id: str | None = None
    files: list[JobFile] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed")


class JobResults(BaseModel):
    job_id: str
    results: list[dict] = Field(description="the contract's JSON, one per page, in file then page order")


class UrisRequest(BaseModel):
    uris: list[str] = Field(min_length=1, max_length=100, description="s3://bucket/key of drawings to process")


def outcome_key(job_id: str) -> str:
    return f"jobs/{job_id}/outcome.json"


def upload_key(drawing_id: str, kind: str) -> str:
    """Uploads are kept by content: the same bytes sent twice are one object, never rewritten."""
    return f"uploads/{drawing_id}.{kind}"


def content_type(kind: str) -> str:
    return _CONTENT_TYPES[kind]


def accept_upload(data: bytes, name: str, limits: inputs.Limits) -> tuple[str, str]:
    """Check an upload as processing would (type by content, size, pixels, pages) before anything is
    stored; returns (kind, drawing_id) or raises `inputs.BadInput` with the reason."""
    kind = inputs.check(data, name, limits)
    return kind, inputs.content_hash(data)


def status_of(state_type: str) -> JobState:
    """A Prefect-style run state type (SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CRASHED,
    CANCELLED, CANCELLING, PAUSED) as a job status."""
    t = state_type.upper()
    if t == "RUNNING":
        return "running"
    if t == "COMPLETED":
        return "completed"
    if t in ("FAILED", "CRASHED", "CANCELLED", "CANCELLING"):
        return "failed"
    return "queued"  # SCHEDULED (also AwaitingRetry, Late), PENDING, PAUSED


def stage_of(task_name: str) -> str:
    """The stage a task run belongs to (`detect_page-3f2` -> detect)."""
    base = task_name.rsplit("-", 1)[0] if "-" in task_name else task_name
    return _TASK_STAGE.get(base, base)


def progress(n_files: int, finished_tasks: list[str], pages: int | None = None) -> float:
    """How far a running job has got: page stages finished over those expected (one page per file
    until the files are loaded), kept below 1 until the run itself completes."""
    per_page = len(STAGES) - 1  # load is per file
    expected = n_files + per_page * max(pages or n_files, 1)
    done = sum(1 for name in finished_tasks if stage_of(name) in STAGES)
    return round(min(done / expected, 0.99), 3)
