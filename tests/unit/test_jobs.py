"""Job records and rules: status from a run state, stage and progress, upload checks before storing."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from dimflow import inputs
from dimflow.jobs import (
    FileOutcome,
    JobOutcome,
    accept_upload,
    progress,
    stage_of,
    status_of,
    upload_key,
)
from tests.unit.test_inputs import BAD, _pdf_with_squares


@pytest.mark.parametrize(
    ("state", "status"),
    [("SCHEDULED", "queued"), ("PENDING", "queued"), ("PAUSED", "queued"), ("RUNNING", "running"),
     ("COMPLETED", "completed"), ("FAILED", "failed"), ("CRASHED", "failed"), ("CANCELLED", "failed"),
     ("CANCELLING", "failed"), ("running", "running")],
)  # fmt: skip
def test_status_of_every_run_state(state: str, status: str) -> None:
    assert status_of(state) == status


def test_stage_of_task_run_names() -> None:
    assert stage_of("detect_page-3f2") == "detect"
    assert stage_of("read_pages-0") == "read"
    assert stage_of("merge-a1b") == "merge"
    assert stage_of("load_drawing-77") == "load"
    assert stage_of("something_else-1") == "something_else"


def test_progress_counts_page_stages_and_stays_below_one_until_done() -> None:
    assert progress(1, []) == 0.0
    one_page = ["load_drawing-1", "detect_page-2", "read_page-3"]
    assert progress(1, one_page) == pytest.approx(3 / 5, abs=1e-3)
    everything = [*one_page, "segment_page-4", "merge-5", "finish_job-6", "start_job-0"]
    assert progress(1, everything) == 0.99  # the run itself says when it is done
    assert progress(2, one_page, pages=4) < progress(1, one_page)


def _png(w: int = 200, h: int = 100) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (w, h), 255).save(buf, format="PNG")
    return buf.getvalue()


def test_accept_upload_returns_kind_and_content_hash() -> None:
    data = _png()
    assert accept_upload(data, "a.png", inputs.Limits()) == ("png", inputs.content_hash(data))
    pdf = _pdf_with_squares(2)
    assert accept_upload(pdf, "b.pdf", inputs.Limits())[0] == "pdf"
    assert upload_key("ab" * 32, "pdf") == f"uploads/{'ab' * 32}.pdf"


@pytest.mark.parametrize("case", sorted(BAD))
def test_accept_upload_refuses_what_processing_refuses(case: str) -> None:
    name, make, limits, reason = BAD[case]
    with pytest.raises(inputs.BadInput) as err:
        accept_upload(make(), name, limits or inputs.Limits())
    assert err.value.reason == reason


def test_a_job_fails_only_when_every_file_failed() -> None:
    ok = FileOutcome(name="a.png", source="store:a", pages=1)
    bad = FileOutcome(name="b.png", source="store:b", error="b.png is empty", reason="empty")
    assert not JobOutcome(job_id="j", files=[ok, bad]).failed
    assert JobOutcome(job_id="j", files=[bad]).failed
    assert not JobOutcome(job_id="j", files=[]).failed
