"""The service end to end, every part real and on loopback: `dimflow api` (uvicorn) with two warm
worker processes, a Prefect server (on the machine's PostgreSQL when it answers, else sqlite),
a private redis-server and moto's S3 server holding the uploads and results.

Shows: submit -> completed -> contract-valid results (PNG, 2-page PDF); a resubmission answered
from the cache; bad uploads refused with 4xx and their reasons while the store stays unchanged;
a worker killed mid-job -> the job is run again (or failed with the reason), never stuck; Redis
stopped -> jobs still complete, uncached, and /readyz says so.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jsonschema
import pytest

from dimflow.client import ApiError, Client
from dimflow.settings import Settings, get_settings
from service.auth import create_token
from service.prefect_server import RECORDER_FLUSH_S, SERVER_ENV
from tests.redis_server import redis_server
from tests.servers import drop_database, free_port, postgres_database, stop, wait_until_answers
from tests.unit.test_inputs import BAD

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "dimflow" / "contracts" / "drawing-result.schema.json").read_text())
BUCKET = "dimflow-svc"
SECRET = "integration-test-signing-key-0123456789abcdef"
MAX_BYTES = 5_000_000


@dataclass
class Stack:
    url: str
    token: str
    env: dict[str, str]
    api: subprocess.Popen
    redis: subprocess.Popen
    log: Path
    s3: object
    prefect_url: str
    prefect: subprocess.Popen

    def client(self, token: str | None = None) -> Client:
        return Client(self.url, token or self.token, timeout_s=120)

    def objects(self) -> dict[str, str]:
        """Every object in the bucket with its ETag: what 'the store is unchanged' compares."""
        out, token = {}, None
        while True:
            kw = {"Bucket": BUCKET, **({"ContinuationToken": token} if token else {})}
            page = self.s3.list_objects_v2(**kw)
            out |= {o["Key"]: o["ETag"] for o in page.get("Contents", [])}
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]


def _drawing(seed: int, index: int = 0) -> bytes:
    from dimflow.synth.generate import generate

    d = generate(seed, index)
    buf = io.BytesIO()
    d.rendered.image.save(buf, format="PNG")
    return buf.getvalue()


def _two_page_pdf() -> bytes:
    from dimflow.synth.generate import generate

    pages = [generate(4711, i).rendered.image.convert("L") for i in range(2)]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=200.0)
    return buf.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    root = tmp_path_factory.mktemp("service")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIMFLOW_", "PREFECT_", "AWS_"))}
    env.update(DIMFLOW_DATA_DIR=str(root / "data"), DIMFLOW_API_SECRET=SECRET, DIMFLOW_WORKERS="2",
               DIMFLOW_MAX_BYTES=str(MAX_BYTES), DIMFLOW_MAX_PAGES="4", DIMFLOW_MAX_UPLOAD_FILES="5",
               DIMFLOW_JOB_POLL_S="0.5", PREFECT_HOME=str(root / "prefect-home"),
               DIMFLOW_SHADOW_SHARE="1",  # every page, when a challenger is registered (one test registers one)
               DIMFLOW_RATE_LIMIT_SUBMIT="100000/minute", DIMFLOW_RATE_LIMIT_READ="100000/minute",
               DIMFLOW_RATE_LIMIT_ADDRESS="100000/minute",  # limits are tested apart (test_security.py)
               PREFECT_LOCAL_STORAGE_PATH=str(root / "prefect-results"), PREFECT_LOGGING_LEVEL="WARNING",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)  # fmt: skip
    procs: list[subprocess.Popen] = []
    db_url, db = postgres_database()
    try:
        boot = subprocess.Popen([str(BIN / "dimflow"), "-q", "models", "bootstrap"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        pport, mport = free_port(), free_port()
        penv = SERVER_ENV | env | ({"PREFECT_API_DATABASE_CONNECTION_URL": db_url} if db_url else {})
        prefect_log = (root / "prefect.log").open("wb")
        procs.append(subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                       "--port", str(pport)], env=penv, stdout=prefect_log,
                                      stderr=subprocess.STDOUT))  # fmt: skip
        procs.append(subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(mport)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        prefect_url = f"http://127.0.0.1:{pport}/api"
        wait_until_answers(procs[0], f"{prefect_url}/health", "prefect server", 240,
                           lambda: (root / "prefect.log").read_text(errors="replace"))  # fmt: skip
        wait_until_answers(procs[1], f"http://127.0.0.1:{mport}/moto-api/", "moto_server", 60, lambda: "")
        assert boot.wait(300) == 0, boot.stderr.read().decode(errors="replace")
        import boto3

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{mport}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        with redis_server(root) as (redis_url, redis_proc):
            aport = free_port()
            env.update(PREFECT_API_URL=prefect_url, DIMFLOW_REDIS_URL=redis_url, DIMFLOW_STORAGE_URL=f"s3://{BUCKET}/svc",
                       AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{mport}")  # fmt: skip
            log = root / "api.log"
            api = subprocess.Popen([str(BIN / "dimflow"), "api", "--port", str(aport)], env=env,
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
            procs.append(api)
            url = f"http://127.0.0.1:{aport}"
            wait_until_answers(api, f"{url}/healthz", "dimflow api", 120, lambda: log.read_text(errors="replace"))
            deadline = time.monotonic() + 300
            while httpx.get(f"{url}/readyz", timeout=30).json()["checks"]["workers"] != "ok":
                assert api.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
            token = create_token("tester", ["drawings:submit", "drawings:read"], 3600, Settings(jwt_secret=SECRET))
            stack = Stack(url, token, env, api, redis_proc, log, s3, prefect_url, procs[0])
            yield stack
            procs.append(stack.api)  # a test may have started it again
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                stop(p, 30)
        drop_database(db)
        get_settings.cache_clear()


def _valid(result: dict) -> None:
    jsonschema.validate(result, SCHEMA)


def test_health_ready_openapi_and_auth(stack: Stack) -> None:
    assert httpx.get(f"{stack.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{stack.url}/readyz", timeout=30).json()
    assert ready["ready"] and ready["degraded"] == [], ready
    assert all(v == "ok" for v in ready["checks"].values()), ready
    paths = httpx.get(f"{stack.url}/openapi.json").json()["paths"]
    for p in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result", "/v1/jobs/{job_id}/balloons.png",
              "/v1/jobs/{job_id}/inspection.csv", "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert p in paths
    some = f"{stack.url}/v1/jobs/{uuid.uuid4()}"
    assert httpx.get(some).status_code == 401
    assert httpx.get(some, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    forged = create_token("mallory", ["admin"], 3600, Settings(jwt_secret="another-key-of-enough-length-xxxxxxxx"))
    assert httpx.get(some, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    read_only = create_token("viewer", ["drawings:read"], 3600, Settings(jwt_secret=SECRET))
    r = httpx.post(f"{stack.url}/v1/jobs", files={"file": ("a.png", _drawing(5))},
                   headers={"Authorization": f"Bearer {read_only}"})  # fmt: skip
    assert r.status_code == 403 and "drawings:submit" in r.text
    assert httpx.get(some, headers={"Authorization": f"Bearer {stack.token}"}).status_code == 404
    bad_id = httpx.get(f"{stack.url}/v1/jobs/not-a-uuid", headers={"Authorization": f"Bearer {stack.token}"})
    assert bad_id.status_code == 404


def test_png_and_two_page_pdf_give_contract_results_balloons_and_csv(stack: Stack) -> None:
    with stack.client() as c:
        png = c.submit([("part-17.png", _drawing(4242))])
        pdf = c.submit([("plates.pdf", _two_page_pdf())])
        seen: list[str] = []
        st = c.wait(png.job_id, timeout_s=240, on_status=lambda s: seen.append(s.status))
        assert st.status == "completed", st
        assert st.files[0].name == "part-17.png" and st.files[0].pages == 1 and st.files[0].error is None
        results = c.results(png.job_id)
        assert len(results) == 1 and results[0]["dimensions"], results
        _valid(results[0])
        assert c.balloons(png.job_id, 1).startswith(b"\x89PNG")
        assert c.inspection_csv(png.job_id, 1).splitlines()[0].startswith(b"balloon")
        with pytest.raises(ApiError) as no_page:
            c.balloons(png.job_id, 2)
        assert no_page.value.status == 404
        st = c.wait(pdf.job_id, timeout_s=240)
        assert st.status == "completed" and st.files[0].pages == 2, st
        pages = c.results(pdf.job_id)
        assert len(pages) == 2 and pages[0]["dimensions"] != pages[1]["dimensions"]  # two sheets, in page order
        for p in pages:
            _valid(p)
        assert c.inspection_csv(pdf.job_id, 2)
    with httpx.Client() as h:  # the job is a Prefect flow run with its stages as task runs
        run = h.get(f"{stack.prefect_url}/flow_runs/{png.job_id}").json()
        assert run["state_type"] == "COMPLETED" and "dimflow-job" in run["tags"] and "by:tester" in run["tags"]
        want = frozenset({"load_drawing", "detect_page", "read_page", "segment_page", "merge"})
        stages = _task_names(h, stack, png.job_id, want)
        assert want <= stages, stages
        arts = h.post(f"{stack.prefect_url}/artifacts/filter",
                      json={"artifacts": {"flow_run_id": {"any_": [png.job_id]}}}).json()  # fmt: skip
        assert [a["description"] for a in arts] == ["dimflow job"] and "| " in arts[0]["data"], arts


def _task_names(h: httpx.Client, stack: Stack, run_id: str, want: frozenset[str] = frozenset(),
                settle_s: float = 10 * RECORDER_FLUSH_S) -> set[str]:  # fmt: skip
    """The stage names of a run's task runs, waiting up to `settle_s` for `want` among them: the
    server's task-run recorder writes them in batches (service.prefect_server.SERVER_ENV)."""
    deadline = time.monotonic() + settle_s
    while True:
        tasks = h.post(f"{stack.prefect_url}/task_runs/filter", json={"flow_runs": {"id": {"any_": [run_id]}}}).json()
        names = {t["name"].rsplit("-", 1)[0] for t in tasks}
        if want <= names or time.monotonic() > deadline:
            return names
        time.sleep(0.2)


def _metric(stack: Stack, name: str) -> float:
    text = httpx.get(f"{stack.url}/metrics", timeout=30).text
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(name))


def test_a_resubmitted_drawing_is_answered_from_the_cache(stack: Stack) -> None:
    data = _drawing(777)
    with stack.client() as c:
        first = c.submit([("a.png", data)])
        assert c.wait(first.job_id, timeout_s=240).status == "completed"
        hits = _metric(stack, 'dimflow_cache_lookups_total{result="hit"}')
        t0 = time.monotonic()
        again = c.submit([("same-bytes-other-name.png", data)])
        st = c.wait(again.job_id, timeout_s=120)
        took = time.monotonic() - t0
        assert st.status == "completed"
        assert c.results(again.job_id) == c.results(first.job_id)
    assert _metric(stack, 'dimflow_cache_lookups_total{result="hit"}') == hits + 1
    time.sleep(2 * RECORDER_FLUSH_S)  # whatever task run the resubmission had is recorded by now
    with httpx.Client() as h:  # no model stage ran for the resubmission
        assert not _task_names(h, stack, again.job_id, settle_s=0) & {"detect_page", "read_page", "segment_page"}
    print(f"resubmission answered from the cache in {took:.2f} s")


def _bad_uploads() -> dict[str, tuple[str, bytes, int]]:
    """name -> (file name, bytes, expected status) for every refusal `dimflow/inputs` knows at its
    default limits, plus size and page-size ones at the service's limits."""
    from tests.unit.test_inputs import _blank_pdf

    cases = {k: (name, make(), 415 if reason == "unsupported_type" else 413 if reason in (
        "pixel_bomb", "decompression_bomb", "too_many_pages", "page_too_large", "too_large") else 422)
        for k, (name, make, limits, reason) in BAD.items() if limits is None}  # fmt: skip
    cases["over_max_bytes"] = ("huge.png", _drawing(1)[:100] + b"\0" * (MAX_BYTES + 10), 413)
    cases["pdf_page_too_large"] = ("wall.pdf", _blank_pdf(1, 20000, 20000), 413)
    cases["pdf_5_pages_over_4"] = ("set.pdf", _blank_pdf(5), 413)
    return cases


def _raw_post(stack: Stack, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request that announces a body it never sends (what an HTTP client library refuses to do)."""
    import socket

    host, port = stack.url.removeprefix("http://").split(":")
    head = ["POST /v1/jobs HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {stack.token}",
            *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1]


def _multipart(name: bytes, data: bytes, boundary: bytes = b"b0undary") -> tuple[bytes, dict[str, str]]:
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="' + name + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n")  # fmt: skip
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def _hostile_requests(h: httpx.Client, good: bytes) -> dict[str, tuple[httpx.Response, int]]:
    """Requests an attacker or a broken client sends: wrong types by their bytes, odd and hostile file
    names (on content that is refused, so the name is all that differs), malformed multipart and JSON,
    URIs outside S3, a chunked body past the limit."""
    types = {"elf": b"\x7fELF\x02\x01\x01" + b"\0" * 64, "zip": b"PK\x03\x04" + b"\0" * 64,
             "html": b"<!doctype html><script>alert(1)</script>", "svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
             "webp": b"RIFF\x24\0\0\0WEBPVP8 " + b"\0" * 32, "gzip": b"\x1f\x8b\x08" + b"\0" * 64,
             "png_sig_then_garbage": b"\x89PNG\r\n\x1a\n" + b"garbage" * 10}  # fmt: skip
    out = {f"type_{k}": (h.post("/v1/jobs", files={"file": (f"{k}.png", v)}), 415 if k != "png_sig_then_garbage"
                         else 422) for k, v in types.items()}  # fmt: skip
    names = {"path_traversal": b"../../../../etc/passwd", "windows_traversal": b"..\\..\\win.ini",
             "non_utf8": b"\xff\xfe\xfa.png", "nul_byte": b"a\x00.png", "ten_kb_name": b"n" * 10_000 + b".png",
             "only_dots": b"....", "control_chars": b"\x1b[31mred\x07.png"}  # fmt: skip
    for k, name in names.items():
        body, headers = _multipart(name, b"not a drawing at all")
        # a 10 kB header line is refused by the multipart parser itself (400), the others by their bytes (415)
        out[f"name_{k}"] = (h.post("/v1/jobs", content=body, headers=headers), 400 if k == "ten_kb_name" else 415)
    body, headers = _multipart(b"a.png", good, boundary=b"one")
    out["boundary_mismatch"] = (h.post("/v1/jobs", content=body, headers={"Content-Type": "multipart/form-data; "
                                       "boundary=other"}), 400)  # fmt: skip
    out["no_boundary"] = (h.post("/v1/jobs", content=body, headers={"Content-Type": "multipart/form-data"}), 400)
    out["multipart_mixed"] = (h.post("/v1/jobs", content=body, headers={"Content-Type": "multipart/mixed"}), 415)
    out["many_fields"] = (h.post("/v1/jobs", data={f"f{i}": "x" for i in range(100)},
                                 files={"file": ("a.png", good)}), 400)  # fmt: skip
    out["huge_text_field"] = (h.post("/v1/jobs", data={"note": "x" * 3_000_000}, files={"file": ("a.png", good)}), 400)
    for k, uris in {"file_uri": ["file:///etc/passwd"], "no_bucket": ["s3:///key.png"], "not_a_list": "s3://b/k",
                    "numbers": [1, 2], "ten_thousand_uris": [f"s3://b/{i}.png" for i in range(10_000)],
                    "traversal_uri": [f"s3://{BUCKET}/../../x.png"]}.items():  # fmt: skip
        want = 413 if k == "ten_thousand_uris" else 422
        out[f"uris_{k}"] = (h.post("/v1/jobs", json={"uris": uris}), want)

    def chunks():  # no Content-Length: cut off while it streams
        yield b'--c\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
        for _ in range(450):
            yield b"\0" * 65536

    out["chunked_over_limit"] = (h.post("/v1/jobs", content=chunks(), headers={"Content-Type": "multipart/form-data; "
                                        "boundary=c"}), 413)  # fmt: skip
    return out


def test_bad_uploads_are_refused_with_reasons_and_store_nothing(stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {stack.token}"}
    before = stack.objects()
    cases = _bad_uploads()
    good = _drawing(31)
    refused = {}
    with httpx.Client(base_url=stack.url, headers=auth, timeout=60) as h:
        for case, (name, data, status) in cases.items():
            r = h.post("/v1/jobs", files={"file": (name, data)})
            assert r.status_code == status, (case, r.status_code, r.text)
            detail = r.json()["detail"]
            assert detail["reason"] and detail["message"] and detail["files"][0]["name"] == name, (case, detail)
            refused[case] = detail["reason"]
        requests = {
            "good_file_beside_a_bad_one": (h.post("/v1/jobs", files=[("file", ("ok.png", good)),
                                                                     ("file", ("bad.png", b"GIF89a"))]), 415),
            "no_file_part": (h.post("/v1/jobs", files={"drawing": ("a.png", good)}), 400),
            "file_as_a_form_field": (h.post("/v1/jobs", data={"file": "not a file"}, files={"x": ("x", b"1")}), 400),
            "urlencoded_form": (h.post("/v1/jobs", data={"file": "not a file"}), 415),
            "six_files_over_five": (h.post("/v1/jobs", files=[("file", (f"{i}.png", good)) for i in range(6)]), 400),
            "plain_text_body": (h.post("/v1/jobs", content=b"hello", headers={"Content-Type": "text/plain"}), 415),
            "malformed_json": (h.post("/v1/jobs", content=b"{uris:", headers={"Content-Type": "application/json"}),
                               422),
            "http_uri": (h.post("/v1/jobs", json={"uris": ["http://example.com/a.png"]}), 422),
            "missing_s3_object": (h.post("/v1/jobs", json={"uris": [f"s3://{BUCKET}/nothing/here.png"]}), 422),
            "empty_uri_list": (h.post("/v1/jobs", json={"uris": []}), 422),
            **_hostile_requests(h, good),
        }  # fmt: skip
    status, body = _raw_post(stack, {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(10**12)})
    assert status == 413 and json.loads(body)["detail"]["reason"] == "too_large"  # refused before reading a byte
    for case, (r, status) in requests.items():
        assert r.status_code == status, (case, r.status_code, r.text)
        assert "reason" in r.json()["detail"], (case, r.text)
    assert len(cases) + len(requests) + 1 >= 50
    assert stack.objects() == before  # nothing stored, nothing replaced
    assert not any(k.startswith("svc/uploads/") for k in set(stack.objects()) - set(before))
    print(f"{len(cases) + len(requests) + 1} bad uploads refused: {sorted(set(refused.values()))}")


def test_a_uri_job_whose_object_is_not_a_drawing_fails_with_the_reason(stack: Stack) -> None:
    stack.s3.put_object(Bucket=BUCKET, Key="inbox/notes.png", Body=b"Dimensions: 40 x 25\n")
    with stack.client() as c:
        job = c.submit(uris=[f"s3://{BUCKET}/inbox/notes.png"])
        st = c.wait(job.job_id, timeout_s=120)
        assert st.status == "failed" and "not a supported drawing file" in (st.error or ""), st
        assert st.files[0].error and "notes.png" in st.files[0].error
        with pytest.raises(ApiError) as err:
            c.results(job.job_id)
        assert err.value.status == 409


def _until_running(c: Client, job_id: str, timeout_s: float = 120) -> None:
    """Until a worker has the job (so that killing it now kills it mid-job)."""
    deadline = time.monotonic() + timeout_s
    while (st := c.status(job_id)).status != "running":
        assert time.monotonic() < deadline and not st.done, st
        time.sleep(0.05)


def _worker_pids(stack: Stack) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(stack.api.pid)], capture_output=True, text=True).stdout.split()
    pids = []
    for pid in out:
        try:
            if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):  # not the tracker
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def _token(sub: str, scopes: list[str], tenant: str | None = None) -> str:
    return create_token(sub, scopes, 600, Settings(jwt_secret=SECRET), tenant=tenant)


def test_a_job_is_its_submitters_within_its_tenant_and_admin_sees_all(stack: Stack) -> None:
    rw = ["drawings:submit", "drawings:read"]
    alice = _token("alice", rw, tenant="plant-7")
    with stack.client(alice) as c:
        job = c.submit([("t.png", _drawing(4242))])
        assert c.wait(job.job_id, timeout_s=240).status == "completed"
        mine = c.results(job.job_id)
    for who in (_token("bob", rw), _token("alice", rw), _token("alice", rw, tenant="plant-8"),
                _token("bob", rw, tenant="plant-7")):  # fmt: skip
        with stack.client(who) as c:
            for call in (lambda: c.status(job.job_id), lambda: c.results(job.job_id), lambda: c.balloons(job.job_id)):
                with pytest.raises(ApiError) as err:
                    call()
                assert err.value.status == 404 and err.value.reason == "no_such_job"
    with stack.client(_token("ops", ["admin"])) as c:
        assert c.results(job.job_id) == mine
    with httpx.Client() as h:  # whose it is shows in the Prefect UI
        tags = h.get(f"{stack.prefect_url}/flow_runs/{job.job_id}").json()["tags"]
        assert {"by:alice", "tenant:plant-7"} <= set(tags), tags


def test_auth_matrix_against_the_running_service(stack: Stack) -> None:
    """Every route x every kind of bad token (tests/unit/test_api.py builds them) against uvicorn:
    401 with a Bearer challenge, or 403 for a token without the scope; never a 2xx or a 5xx."""
    from tests.unit.test_api import ROUTES, _bad_tokens

    with stack.client() as c:
        job = c.submit([("m.png", _drawing(9090))]).job_id
    seen = {}
    with httpx.Client(base_url=stack.url, timeout=60) as h:
        for case, (token, status) in _bad_tokens(SECRET).items():
            for method, route, _ in ROUTES:
                r = h.request(
                    method, route.format(j=job), headers={"Authorization": f"Bearer {token}"} if token else {}
                )
                assert r.status_code == status, (case, method, route, r.status_code, r.text)
                if status == 401:
                    assert r.headers["www-authenticate"].startswith("Bearer"), (case, route, r.headers)
                seen[case] = r.status_code
    assert len(seen) == 8


def test_every_request_is_in_the_audit_log_with_its_action_and_status(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {_token('auditor', ['admin'])}"}
    me = _token("audited", ["drawings:submit", "drawings:read"], tenant="plant-9")

    def served() -> float:  # requests the API answered, by its own counter, but for the unaudited probes
        text = httpx.get(f"{stack.url}/metrics", timeout=30).text
        return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(
            "dimflow_http_requests_total{") and not any(f'route="{p}"' in ln for p in ("/healthz", "/readyz",
                                                                                      "/metrics")))  # fmt: skip

    def newest() -> dict:  # answered before its own entry is written
        return httpx.get(f"{stack.url}/v1/audit?limit=1", headers=admin, timeout=30).json()["entries"][-1]

    counted = served()
    first = newest()
    since = first["at"]
    data = _drawing(5151)
    with stack.client(me) as c:
        job = c.submit([("audited.png", data)])
        c.wait(job.job_id, timeout_s=240)  # one or more status reads
        c.results(job.job_id)
        c.inspection_csv(job.job_id)
    made = [("POST", "/v1/jobs", 202), ("GET", f"/v1/jobs/{job.job_id}/result", 200),
            ("GET", f"/v1/jobs/{job.job_id}/inspection.csv", 200)]  # fmt: skip
    with httpx.Client(base_url=stack.url, timeout=30) as h:
        made.append(("POST", "/v1/jobs", h.post("/v1/jobs", files={"file": ("x.png", b"")}).status_code))  # 401
        made.append(("GET", f"/v1/jobs/{job.job_id}", h.get(f"/v1/jobs/{job.job_id}",
                     headers={"Authorization": "Bearer forged.token.here"}).status_code))  # fmt: skip
    answered = served() - counted
    assert newest()["id"] - first["id"] == answered  # 100% of the requests served are in the log, no more
    got = httpx.get(f"{stack.url}/v1/audit", params={"since": since, "limit": 1000}, headers=admin, timeout=30)
    entries = [e for e in got.json()["entries"] if e["subject"] in ("audited", "")]
    by_route = {(e["method"], e["route"].replace("{job_id}", job.job_id), e["status"]): e for e in entries}
    for method, route, status in made:
        assert (method, route, status) in by_route, (method, route, status, entries)
    submit = by_route[("POST", "/v1/jobs", 202)]
    assert (submit["action"], submit["subject"], submit["tenant"], submit["job_id"]) == (
        "submit",
        "audited",
        "plant-9",
        job.job_id,
    )
    from dimflow.inputs import content_hash

    assert submit["drawings"] == [content_hash(data)]
    result = by_route[("GET", f"/v1/jobs/{job.job_id}/result", 200)]
    assert result["action"] == "read_result" and result["models"] and result["drawings"] == [content_hash(data)]
    assert by_route[("POST", "/v1/jobs", 401)]["action"] == "submit"  # a refused submit is a submit, no subject
    assert by_route[("GET", f"/v1/jobs/{job.job_id}", 401)]["action"] == "token_refused"
    assert any(e["action"] == "read_status" and e["status"] == 200 for e in entries)
    assert {e["client"] for e in entries} == {"127.0.0.1"}


def test_a_worker_killed_mid_job_gets_the_job_run_again_never_stuck(stack: Stack) -> None:
    with stack.client() as c:
        job = c.submit([("killed.png", _drawing(9090))])
        _until_running(c, job.job_id)
        victims = _worker_pids(stack)
        assert len(victims) == 2
        for pid in victims:  # both: whichever had the job
            os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        st = c.wait(job.job_id, timeout_s=300)
        took = time.monotonic() - t0
        assert st.status == "completed", st
        _valid(c.results(job.job_id)[0])
    with httpx.Client() as h:
        states = [s["name"] for s in h.get(f"{stack.prefect_url}/flow_run_states/",
                                           params={"flow_run_id": job.job_id}).json()]  # fmt: skip
    assert "AwaitingRetry" in states and states[-1] == "Completed", states
    assert _metric(stack, 'dimflow_jobs_recovered_total{action="retried"}') >= 1
    print(f"worker killed mid-job: run again and completed {took:.1f} s later; states {states}")


def test_recover_fails_a_job_past_its_attempts_with_the_reason(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import get_client
    from prefect.states import Running

    from dimflow.jobs import JobFile
    from service import runs

    monkeypatch.setenv("PREFECT_API_URL", stack.prefect_url)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.prefect_url}), get_client(sync_client=True) as client:
        from flows.process import process_job

        files = [JobFile(name="x.png", source="store:x").model_dump()]
        run = client.create_flow_run(process_job, parameters={"files": files}, tags=["dimflow-job"], state=Running())
        assert runs.recover(client, str(run.id), "worker process 0 died (killed by SIGKILL)", attempts=1) == "failed"
        crashed = client.read_flow_run(run.id)
        assert crashed.state.type.value == "CRASHED" and "SIGKILL" in crashed.state.message
        assert runs.recover(client, str(run.id), "again", attempts=1) == "finished"  # a final state stays final


def test_metrics_cover_requests_jobs_stages_queue_cache_confidence_models(stack: Stack) -> None:
    refused = _metric(stack, 'dimflow_uploads_refused_total{reason="unsupported_type"}')
    r = httpx.post(f"{stack.url}/v1/jobs", files={"file": ("a.gif", b"GIF89a....")},
                   headers={"Authorization": f"Bearer {stack.token}"})  # fmt: skip
    assert r.status_code == 415
    assert _metric(stack, 'dimflow_uploads_refused_total{reason="unsupported_type"}') == refused + 1
    text = httpx.get(f"{stack.url}/metrics", timeout=30).text
    for name in ("dimflow_http_requests_total", "dimflow_http_request_seconds_bucket", "dimflow_job_seconds_bucket",
                 'dimflow_stage_seconds_bucket{le="0.5",stage="detect"}', 'dimflow_jobs_total{outcome="completed"',
                 'dimflow_jobs_total{outcome="failed"', "dimflow_queue_depth", "dimflow_cache_lookups_total",
                 "dimflow_dimension_confidence_bucket", "dimflow_models_info", "dimflow_uploads_refused_total",
                 "dimflow_workers_ready"):  # fmt: skip
        assert name in text, name
    assert 'route="/v1/jobs",status="202"' in text and 'route="/v1/jobs",status="415"' in text


def test_cli_submit_waits_and_writes_the_outputs(stack: Stack, tmp_path: Path) -> None:
    f = tmp_path / "bracket.png"
    f.write_bytes(_drawing(2024))
    out = tmp_path / "out"
    r = subprocess.run([str(BIN / "dimflow"), "-q", "submit", str(f), "--api", stack.url, "--token", stack.token,
                        "--wait", "--out", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip().splitlines()[-1]
    assert uuid.UUID(job_id)
    written = sorted(p.suffix for p in out.iterdir())
    assert written == [".csv", ".json", ".png"], written
    _valid(json.loads(next(out.glob("*.json")).read_text()))
    bad = subprocess.run([str(BIN / "dimflow"), "-q", "submit", str(f), "--api", stack.url, "--token", "nope"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "invalid token" in bad.stderr


def _models_cli(stack: Stack, *args: str) -> str:
    r = subprocess.run([str(BIN / "dimflow"), "-q", "models", *args], env=stack.env, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


def _first_job_on(stack: Stack, c: Client, version: str, since: float, seed: int) -> float:
    """Seconds from `since` until a job submitted then is answered by segmenter `version`."""
    for i in range(40):
        sent = time.monotonic()
        job = c.submit([(f"probe-{seed}-{i}.png", _drawing(seed, i))])
        assert c.wait(job.job_id, timeout_s=240).status == "completed"
        if c.results(job.job_id)[0]["models"]["segmenter"] == version:
            return sent - since
        time.sleep(max(0.0, 1.0 - (time.monotonic() - sent)))
    pytest.fail(f"no job was answered by {version} in 40 tries")


def test_a_promotion_and_a_rollback_reach_the_workers_without_a_restart_or_a_failed_job(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dimflow import registry

    monkeypatch.setenv("DIMFLOW_DATA_DIR", stack.env["DIMFLOW_DATA_DIR"])  # the service's registry
    monkeypatch.delenv("DIMFLOW_MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        model = tmp_path / "segmenter"  # the shipped segmenter again, as a new version (a retrained one's stand-in)
        shutil.copytree(ROOT / "models" / "baseline" / "segmenter", model,
                        ignore=shutil.ignore_patterns("checksums.json", "*.md"))  # fmt: skip
        new = registry.log_and_register("drawing-segmenter", model, {}, [], {}, "test", alias=registry.CHALLENGER)
    finally:
        get_settings.cache_clear()
    with stack.client() as c:
        # shadow runs: the challenger (the same weights) reads the jobs' pages too, and agrees everywhere
        records: dict[str, str] = {}
        for i in range(20):
            job = c.submit([(f"shadow-{i}.png", _drawing(9399, i))])
            assert c.wait(job.job_id, timeout_s=240).status == "completed"
            records = {k: v for k, v in stack.objects().items() if k.startswith("svc/shadow/")}
            if records:
                break
        assert records, "no shadow record after 20 jobs"
        doc = json.loads(stack.s3.get_object(Bucket=BUCKET, Key=next(iter(records)))["Body"].read())
        assert doc["challenger"]["segmenter"] == new.ref and doc["champion"]["segmenter"] == "drawing-segmenter/1"
        agreement = doc["agreement"]
        assert agreement["matched"] >= 0.9 * agreement["champion_dimensions"] > 0, agreement
        assert agreement["same"]["nominal"] >= 0.9 * agreement["matched"], agreement
        compared = _models_cli(stack, "compare")
        assert f"'segmenter': '{new.ref}'" in compared and "pages" in compared, compared
        before = [c.submit([(f"inflight-{i}.png", _drawing(9400, i))]) for i in range(3)]  # in flight meanwhile
        assert f"-> {new.version}" in _models_cli(stack, "promote", "segmenter", str(new.version), "--reason", "test")
        promoted = time.monotonic()  # the alias has moved
        for job in before:  # the jobs in flight end well, each on one set of models
            st = c.wait(job.job_id, timeout_s=240)
            assert st.status == "completed", st
        took = _first_job_on(stack, c, new.ref, promoted, 9401)  # the figure is quoted; the bound only catches a hang
        assert took <= 60, f"workers answered with the new champion {took:.1f} s after the promotion"
        assert "rollback drawing-segmenter" in _models_cli(stack, "rollback", "segmenter")
        rolled = time.monotonic()
        back = _first_job_on(stack, c, "drawing-segmenter/1", rolled, 9402)
        assert back <= 60, f"workers answered with the old champion {back:.1f} s after the rollback"
    print(f"promotion -> serving {took:.1f} s, rollback -> serving {back:.1f} s")
    assert "new champions loaded" in stack.log.read_text(errors="replace")
    assert stack.api.poll() is None


def test_the_service_killed_outright_recovers_its_running_job_when_it_starts_again(stack: Stack) -> None:
    """SIGKILL to the API process: its workers die with it (PDEATHSIG) and nothing hands the job back;
    the next start of the same service finds the job its workers held and runs it again."""
    with stack.client() as c:
        job = c.submit([("orphan.png", _drawing(8080))])
        _until_running(c, job.job_id)
    workers = _worker_pids(stack)
    stack.api.send_signal(signal.SIGKILL)
    stack.api.wait(30)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.2)
    with httpx.Client() as h:
        assert h.get(f"{stack.prefect_url}/flow_runs/{job.job_id}").json()["state_type"] in ("RUNNING", "PENDING")
    port = stack.url.rsplit(":", 1)[1]
    stack.api = subprocess.Popen([str(BIN / "dimflow"), "api", "--port", port], env=stack.env,
                                 stdout=stack.log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip
    t0 = time.monotonic()
    wait_until_answers(stack.api, f"{stack.url}/healthz", "dimflow api", 120, lambda: stack.log.read_text()[-3000:])
    with stack.client() as c:
        st = c.wait(job.job_id, timeout_s=300)
    assert st.status == "completed", st
    with httpx.Client() as h:
        states = [s["name"] for s in h.get(f"{stack.prefect_url}/flow_run_states/",
                                           params={"flow_run_id": job.job_id}).json()]  # fmt: skip
    assert "AwaitingRetry" in states and states[-1] == "Completed", states
    print(f"service killed mid-job: restarted, job recovered and completed {time.monotonic() - t0:.1f} s later")


def _fuzz(stack: Stack, token: str, report: Path, *extra: str) -> tuple[int, str]:
    checks = "not_a_server_error,response_schema_conformance,content_type_conformance,ignored_auth"
    cmd = [str(BIN / "st"), "run", f"{stack.url}/openapi.json", "-H", f"Authorization: Bearer {token}", "--checks",
           checks, "--max-examples", "12", "--seed", "20261203", "--request-timeout", "60", "--report", "ndjson",
           "--report-ndjson-path", str(report), "--no-color", *extra]  # fmt: skip
    env = {k: v for k, v in stack.env.items() if not k.startswith("PREFECT_")}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=report.parent)
    tail = r.stdout[-4000:] + r.stderr[-2000:]
    print(tail)
    assert r.returncode == 0, tail
    import re

    made = re.search(r"(\d+) generated, (\d+) passed", r.stdout)
    assert made and int(made[1]) == int(made[2]), tail
    return int(made[1]), tail


def test_a_fuzzer_against_the_openapi_schema_finds_no_server_error(stack: Stack, tmp_path: Path) -> None:
    """Schemathesis (property-based, from /openapi.json): no 5xx, every documented response in its
    schema and content type, a dropped token still a 401 (ignored_auth); with a submitter's token over
    every route, following the links from a submission to its job (stateful), then with an admin's
    over the audit log's query."""
    user = _token("fuzzer", ["drawings:submit", "drawings:read"])
    n_user, _ = _fuzz(stack, user, tmp_path / "user.ndjson", "--phases", "examples,coverage,fuzzing,stateful")
    n_admin, _ = _fuzz(stack, _token("fuzz-admin", ["admin"]), tmp_path / "admin.ndjson", "--include-path",
                       "/v1/audit", "--phases", "examples,coverage,fuzzing")  # fmt: skip
    print(f"fuzzed: {n_user} cases as a submitter, {n_admin} as an admin over /v1/audit")
    assert n_user >= 100 and n_admin >= 10
    assert stack.api.poll() is None  # the service is still up


def test_with_redis_stopped_jobs_still_complete_uncached_and_readyz_says_so(stack: Stack) -> None:
    """Near the end: it stops the module's Redis."""
    stop(stack.redis, 10)
    ready = httpx.get(f"{stack.url}/readyz", timeout=30)
    body = ready.json()
    assert ready.status_code == 200 and body["ready"] and body["degraded"] == ["redis"], body
    assert body["checks"]["redis"].startswith("down")
    misses = _metric(stack, 'dimflow_cache_lookups_total{result="miss"}')
    t0 = time.monotonic()
    with stack.client() as c:
        job = c.submit([("no-redis.png", _drawing(6060))])
        st = c.wait(job.job_id, timeout_s=240)
        assert st.status == "completed", st
        _valid(c.results(job.job_id)[0])
    took = time.monotonic() - t0
    assert _metric(stack, 'dimflow_cache_lookups_total{result="miss"}') == misses + 1
    print(f"Redis stopped: job completed uncached in {took:.1f} s (workers found it by polling Prefect)")


def test_with_prefect_down_a_submission_is_refused_with_503_and_readyz_names_it(stack: Stack) -> None:
    """Last of all: it stops the Prefect server. Nothing can be queued, so nothing is accepted."""
    stop(stack.prefect, 30)
    t0 = time.monotonic()
    r = httpx.post(f"{stack.url}/v1/jobs", files={"file": ("late.png", _drawing(5150))},
                   headers={"Authorization": f"Bearer {stack.token}"}, timeout=120)  # fmt: skip
    took = time.monotonic() - t0
    assert r.status_code == 503 and r.json()["detail"]["reason"] == "prefect_unavailable", r.text
    assert took < 20, took  # the client's retries are capped (PREFECT_CLIENT_MAX_RETRIES=2), the wait at 15 s
    ready = httpx.get(f"{stack.url}/readyz", timeout=60)
    assert ready.status_code == 503 and ready.json()["checks"]["prefect"].startswith("down"), ready.text
    assert httpx.get(f"{stack.url}/healthz").status_code == 200  # alive, not ready
    print(f"Prefect down: submission refused with 503 in {took:.1f} s")
