"""Tokens: signed, scoped, expiring; the one dependency every job route goes through."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from dimflow.settings import Settings
from service.auth import create_token, require, signing_key, verify

SECRET = "unit-test-signing-key-0123456789abcdef0123"


def _settings(tmp_path: Path | None = None, secret: str | None = SECRET) -> Settings:
    return Settings(api_secret=secret, data_dir=tmp_path or Path("."))


def test_a_token_round_trips_with_its_subject_and_scopes() -> None:
    s = _settings()
    who = verify(create_token("plm-bridge", ["drawings:submit", "drawings:read"], 60, s), s)
    assert who.sub == "plm-bridge" and who.scopes == {"drawings:submit", "drawings:read"} and who.token_id


def test_forged_expired_and_unknown_scope_tokens_are_refused() -> None:
    s = _settings()
    other = _settings(secret="another-unit-test-key-0123456789abcdef0")
    with pytest.raises(jwt.InvalidSignatureError):
        verify(create_token("x", ["admin"], 60, other), s)
    expired = jwt.encode({"iss": "dimflow", "sub": "x", "scope": "admin", "iat": 1, "exp": int(time.time()) - 5,
                          "jti": "j"}, SECRET, algorithm="HS256")  # fmt: skip
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(expired, s)
    unsigned = jwt.encode({"iss": "dimflow", "sub": "x", "scope": "admin", "iat": 1, "exp": int(time.time()) + 60,
                           "jti": "j"}, None, algorithm="none")  # fmt: skip
    with pytest.raises(jwt.InvalidTokenError):
        verify(unsigned, s)
    with pytest.raises(ValueError, match="unknown scope"):
        create_token("x", ["drawings:delete"], 60, s)
    with pytest.raises(ValueError, match="subject"):
        create_token(" ", ["admin"], 60, s)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32"):
        signing_key(_settings(secret="short"))


def test_without_a_secret_one_is_generated_once_private_to_the_owner(tmp_path: Path) -> None:
    s = _settings(tmp_path, secret=None)
    key = signing_key(s)
    path = tmp_path.resolve() / "api-secret"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(_settings(tmp_path, secret=None)) == key
    assert verify(create_token("a", ["admin"], 60, s), s).sub == "a"


def _app() -> TestClient:
    app = FastAPI()
    app.state.settings = _settings()

    @app.get("/read")
    def read(who=Depends(require("drawings:read"))) -> dict:  # noqa: B008
        return {"sub": who.sub}

    return TestClient(app)


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Basic dXNlcjpwYXNz", 401), ("Bearer garbage", 401)],
)
def test_the_dependency_refuses_missing_and_malformed_tokens(header: str | None, status: int) -> None:
    r = _app().get("/read", headers={"Authorization": header} if header else {})
    assert r.status_code == status and r.headers.get("www-authenticate") == "Bearer"


def test_the_dependency_checks_the_scope_and_admin_holds_every_scope() -> None:
    s, client = _settings(), _app()
    submit_only = create_token("a", ["drawings:submit"], 60, s)
    assert client.get("/read", headers={"Authorization": f"Bearer {submit_only}"}).status_code == 403
    for scopes in (["drawings:read"], ["admin"]):
        token = create_token("b", scopes, 60, s)
        assert client.get("/read", headers={"Authorization": f"Bearer {token}"}).json() == {"sub": "b"}
