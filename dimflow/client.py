"""A typed client of the dimflow service API (what `dimflow submit` uses; PLM/MES glue can too).

    with Client("http://127.0.0.1:8000", token) as api:
        job = api.submit([Path("part-17.pdf")])
        status = api.wait(job.job_id)
        for page in api.results(job.job_id):
            print(page["drawing_id"], len(page["dimensions"]))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from dimflow.jobs import JobResults, JobStatus, Submitted


class ApiError(RuntimeError):
    """The service refused or failed a request: .status (HTTP), .reason (machine code), the message."""

    def __init__(self, status: int, reason: str, message: str, detail: object = None) -> None:
        super().__init__(f"{message} (HTTP {status}, {reason})")
        self.status, self.reason, self.detail = status, reason, detail


class Client:
    def __init__(self, base_url: str, token: str, timeout_s: float = 60.0) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.is_success:
            return r
        try:
            detail = r.json().get("detail")
        except ValueError:
            detail = r.text[:500]
        if isinstance(detail, dict):
            raise ApiError(r.status_code, str(detail.get("reason", "error")), str(detail.get("message")), detail)
        raise ApiError(r.status_code, "error", str(detail), detail)

    def submit(self, files: Sequence[Path | tuple[str, bytes]] = (), uris: Sequence[str] = ()) -> Submitted:
        """Queue local files (paths or (name, bytes)) or s3:// URIs as one job."""
        if uris and files:
            raise ValueError("a job takes files or URIs, not both")
        if uris:
            return Submitted.model_validate(self._check(self._http.post("/v1/jobs", json={"uris": list(uris)})).json())
        parts = []
        for f in files:
            name, data = (f.name, f.read_bytes()) if isinstance(f, Path) else f
            parts.append(("file", (name, data, "application/octet-stream")))
        if not parts:
            raise ValueError("nothing to submit")
        return Submitted.model_validate(self._check(self._http.post("/v1/jobs", files=parts)).json())

    def status(self, job_id: str, wait_s: float = 0.0) -> JobStatus:
        r = self._http.get(f"/v1/jobs/{job_id}", params={"wait": wait_s} if wait_s else None,
                           timeout=self._http.timeout.read + wait_s if wait_s else None)  # fmt: skip
        return JobStatus.model_validate(self._check(r).json())

    def wait(self, job_id: str, timeout_s: float = 600.0, on_status: Callable[[JobStatus], None] | None = None,
             poll_s: float = 5.0) -> JobStatus:  # fmt: skip
        """Until the job completes or fails (long polls of `poll_s`); TimeoutError past `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            st = self.status(job_id, wait_s=min(poll_s, max(deadline - time.monotonic(), 0.0)))
            if on_status is not None:
                on_status(st)
            if st.done:
                return st
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {st.status} ({st.stage}) after {timeout_s:g} s")

    def results(self, job_id: str) -> list[dict]:
        """The contract's JSON of every page."""
        return JobResults.model_validate(self._check(self._http.get(f"/v1/jobs/{job_id}/result")).json()).results

    def balloons(self, job_id: str, page: int = 1) -> bytes:
        return self._check(self._http.get(f"/v1/jobs/{job_id}/balloons.png", params={"page": page})).content

    def inspection_csv(self, job_id: str, page: int = 1) -> bytes:
        return self._check(self._http.get(f"/v1/jobs/{job_id}/inspection.csv", params={"page": page})).content
