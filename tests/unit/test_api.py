"""The API's refusals, which happen before anything is stored or queued: no server is needed to
show them (the app runs without its lifespan, so a request that got past them would fail loudly)."""

from __future__ import annotations

import io
import time

import jwt
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from dimflow.settings import Settings
from service.api import _clean_name, create_app
from service.auth import create_token
from tests.unit.test_inputs import BAD

SECRET = "unit-test-signing-key-0123456789abcdef0123"


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> tuple[TestClient, dict[str, str]]:
    s = Settings(jwt_secret=SECRET, workers=0, max_bytes=2_000_000, max_upload_files=3,
                 data_dir=tmp_path_factory.mktemp("api"), rate_limit_submit="1000/minute")  # fmt: skip
    token = create_token("unit", ["drawings:submit", "drawings:read"], 600, s)
    app = create_app(s)
    app.state.audit.migrate()  # the app runs without its lifespan here
    return TestClient(app, raise_server_exceptions=True), {"Authorization": f"Bearer {token}"}


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


def _tamper(token: str) -> str:
    """The same token with its payload changed (admin for a nobody): the signature no longer matches."""
    import base64
    import json as _json

    head, body, sig = token.split(".")
    claims = _json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "root"
    forged = base64.urlsafe_b64encode(_json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


ROUTES = [("POST", "/v1/jobs", "submit"), ("GET", "/v1/jobs/{j}", "read_status"),
          ("GET", "/v1/jobs/{j}/result", "read_result"), ("GET", "/v1/jobs/{j}/balloons.png", "read_result"),
          ("GET", "/v1/jobs/{j}/inspection.csv", "read_result"), ("GET", "/v1/audit", "admin")]  # fmt: skip
JOB = "0b6a1c8e-1f2e-4a57-9f0e-2d7a4c1b9e33"


def _bad_tokens(secret: str = SECRET) -> dict[str, tuple[str | None, int]]:
    """Tokens the service must refuse (signed with `secret` where they are signed at all), and how."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    now = int(time.time())
    good = {"iss": "dimflow", "aud": "dimflow-api", "sub": "u", "scope": "drawings:read drawings:submit",
            "iat": now, "exp": now + 60}  # fmt: skip
    return {
        "none": (None, 401),
        "tampered": (_tamper(create_token("u", ["admin"], 60, Settings(jwt_secret=secret))), 401),
        "alg-none": (jwt.encode(good, None, algorithm="none"), 401),
        "rs256-unknown-key": (jwt.encode(good, rsa.generate_private_key(65537, 2048), algorithm="RS256"), 401),
        "expired": (jwt.encode({**good, "exp": now - 300}, secret, algorithm="HS256"), 401),
        "wrong-audience": (jwt.encode({**good, "aud": "billing"}, secret, algorithm="HS256"), 401),
        "wrong-issuer": (jwt.encode({**good, "iss": "elsewhere"}, secret, algorithm="HS256"), 401),
        "no-scope": (jwt.encode({**good, "scope": ""}, secret, algorithm="HS256"), 403),
    }


@pytest.mark.parametrize(("method", "route", "action"), ROUTES, ids=[f"{m} {r}" for m, r, _ in ROUTES])
@pytest.mark.parametrize("case", list(_bad_tokens()))
def test_auth_matrix_every_route_refuses_every_bad_token_and_audits_it(api, method, route, action, case) -> None:
    client, _ = api
    token, status = _bad_tokens()[case]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.request(method, route.format(j=JOB), headers=headers)
    assert r.status_code == status, (case, r.text)
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
    entry = client.app.state.audit.tail(1)[0]
    want = action if action == "submit" or status != 401 else "token_refused"
    assert (entry["action"], entry["status"], entry["route"].replace("{job_id}", "{j}")) == (want, status, route)
    assert entry["subject"] == ("u" if status == 403 else "") and entry["detail"], entry


def test_a_submit_token_may_not_read_the_audit_log_and_an_admin_may(api) -> None:
    client, auth = api
    assert client.get("/v1/audit", headers=auth).status_code == 403
    admin = create_token("ops", ["admin"], 60, Settings(jwt_secret=SECRET))
    r = client.get("/v1/audit?limit=5", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200 and len(r.json()["entries"]) == 5, r.text
    assert client.app.state.audit.tail(1)[0]["action"] == "admin"


def test_refused_uploads_are_audited_with_subject_and_reason(api) -> None:
    client, auth = api
    assert client.post("/v1/jobs", files={"file": ("x.png", b"")}, headers=auth).status_code == 422
    e = client.app.state.audit.tail(1)[0]
    assert (e["action"], e["subject"], e["status"], e["detail"]) == ("submit", "unit", 422, "empty"), e


def test_the_audit_log_refuses_updates_and_deletes(api) -> None:
    import sqlalchemy as sa

    client, _ = api
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), client.app.state.audit.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET status = 200"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), client.app.state.audit.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))


def test_over_the_rate_limit_a_client_gets_429_with_retry_after(tmp_path) -> None:
    s = Settings(jwt_secret=SECRET, workers=0, data_dir=tmp_path, rate_limit_submit="3/minute")
    app = create_app(s)
    app.state.audit.migrate()
    client = TestClient(app)
    auth = {"Authorization": f"Bearer {create_token('burst', ['drawings:submit'], 60, s)}"}
    codes = [client.post("/v1/jobs", files={"file": ("x.png", b"")}, headers=auth).status_code for _ in range(5)]
    assert codes == [422, 422, 422, 429, 429], codes
    r = client.post("/v1/jobs", files={"file": ("x.png", b"")}, headers=auth)
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["detail"]["reason"] == "rate_limited"
    assert "over the submit limit of 3 per 1 minute" in r.json()["detail"]["message"]  # the limit that tripped
    other = {"Authorization": f"Bearer {create_token('calm', ['drawings:submit'], 60, s)}",
             "X-Forwarded-For": "10.1.2.3"}  # fmt: skip
    assert client.post("/v1/jobs", files={"file": ("x.png", b"")}, headers=other).status_code == 422  # its own budget
    assert app.state.audit.tail(1, action="submit")[0]["client"] == "testclient"  # not a trusted proxy: XFF ignored
    assert [e["action"] for e in app.state.audit.tail(3)][:2] == ["submit", "submit"]


def test_dimflow_audit_tail_prints_the_newest_entries(api, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from cli.app import app as cli
    from dimflow.settings import get_settings

    client, auth = api
    client.post("/v1/jobs", files={"file": ("tail.png", b"")}, headers=auth)
    monkeypatch.setenv("DIMFLOW_AUDIT_URL", client.app.state.audit.url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["audit", "tail", "-n", "2", "--json"])
        plain = CliRunner().invoke(cli, ["audit", "tail", "-n", "1"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert (last["action"], last["subject"], last["status"], last["detail"]) == ("submit", "unit", 422, "empty")
    assert "submit" in plain.stdout and "POST /v1/jobs 422" in plain.stdout, plain.stdout


def test_a_chunked_upload_over_the_limit_is_cut_off_with_413(api) -> None:
    client, auth = api
    sent = 0

    def body():  # no Content-Length: the limit must be found while it streams
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
        for _ in range(200):  # 12.8 MB against 3 x 2 MB + 1 MiB
            sent += 64 * 1024
            yield b"\0" * (64 * 1024)
        yield b"\r\n--b--\r\n"

    r = client.post("/v1/jobs", content=body(), headers={**auth, "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["detail"]["reason"] == "too_large", r.text
    assert "the request body is over 7,048,576 bytes" in r.json()["detail"]["message"]  # cut off as it came
    entry = client.app.state.audit.tail(1)[0]
    assert (entry["action"], entry["status"], entry["detail"]) == ("submit", 413, "too_large")
