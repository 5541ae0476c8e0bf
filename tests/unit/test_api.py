"""The API's refusals, which happen before anything is stored or queued: no server is needed to
show them (the app runs without its lifespan, so a request that got past them would fail loudly)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dimflow.settings import Settings
from service.api import _clean_name, create_app
from service.auth import create_token
from tests.unit.test_inputs import BAD

SECRET = "unit-test-signing-key-0123456789abcdef0123"


@pytest.fixture(scope="module")
def api() -> tuple[TestClient, dict[str, str]]:
    s = Settings(api_secret=SECRET, workers=0, max_bytes=2_000_000, max_upload_files=3)
    token = create_token("unit", ["drawings:submit", "drawings:read"], 600, s)
    return TestClient(create_app(s), raise_server_exceptions=True), {"Authorization": f"Bearer {token}"}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (300, 200), 255).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(k for k, v in BAD.items() if v[2] is None))
def test_every_bad_file_is_refused_with_its_reason(api, case: str) -> None:
    client, auth = api
    name, make, _, reason = BAD[case]
    r = client.post("/v1/jobs", files={"file": (name, make())}, headers=auth)
    assert 400 <= r.status_code < 500, r.text
    detail = r.json()["detail"]
    assert detail["reason"] == reason and detail["files"] == [
        {"name": name, "reason": reason, "message": detail["files"][0]["message"]}
    ]
    assert "nothing was stored" in detail["message"]


def test_one_bad_file_refuses_the_whole_request(api) -> None:
    client, auth = api
    r = client.post("/v1/jobs", files=[("file", ("ok.png", _png())), ("file", ("x.png", b""))], headers=auth)
    assert r.status_code == 422 and r.json()["detail"]["reason"] == "empty"
    assert "1 of 2 files refused" in r.json()["detail"]["message"]


@pytest.mark.parametrize(
    ("kwargs", "status", "reason"),
    [
        ({"files": {"drawing": ("a.png", b"x")}}, 400, "no_file"),
        ({"data": {"file": "text"}, "files": {"other": ("a.bin", b"1")}}, 400, "not_a_file"),
        ({"data": {"file": "text"}}, 415, "unsupported_media_type"),  # a urlencoded form
        ({"content": b"hi", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        ({"content": b"{", "headers": {"Content-Type": "application/json"}}, 422, "bad_json"),
        ({"json": {"uris": ["ftp://host/a.png"]}}, 422, "bad_uri"),
        ({"json": {"uris": []}}, 422, "bad_json"),
        ({"content": b"", "headers": {"Content-Type": "multipart/form-data; boundary=b",
                                      "Content-Length": str(10**10)}}, 413, "too_large"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused(api, kwargs: dict, status: int, reason: str) -> None:
    client, auth = api
    headers = {**auth, **kwargs.pop("headers", {})}
    r = client.post("/v1/jobs", headers=headers, **kwargs)
    assert r.status_code == status and r.json()["detail"]["reason"] == reason, r.text


def test_too_many_files_and_a_file_over_the_size_limit(api) -> None:
    client, auth = api
    four = [("file", (f"{i}.png", _png())) for i in range(4)]
    assert client.post("/v1/jobs", files=four, headers=auth).status_code == 400  # starlette's max_files
    big = _png() + b"\0" * 2_000_000
    r = client.post("/v1/jobs", files={"file": ("big.png", big)}, headers=auth)
    assert r.status_code == 413 and r.json()["detail"]["reason"] == "too_large"


def test_job_routes_need_a_token_and_health_does_not(api) -> None:
    client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    for path in ("/v1/jobs/x", "/v1/jobs/x/result", "/v1/jobs/x/balloons.png", "/v1/jobs/x/inspection.csv"):
        assert client.get(path).status_code == 401
    assert client.post("/v1/jobs", files={"file": ("a.png", _png())}).status_code == 401


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("../../etc/passwd", "passwd"), ("C:\\\\scans\\\\part 7.png", "part 7.png"), ("", "file-1"),
     ("a\\x00b\\nc.pdf", "a_b_c.pdf"), ("<script>.png", "_script_.png"), ("..", "file-1")],
)  # fmt: skip
def test_sent_file_names_are_cleaned(raw: str, clean: str) -> None:
    assert _clean_name(raw.encode().decode("unicode_escape"), 0) == clean
