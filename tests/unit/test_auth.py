"""Tokens: signed (HS256 here, RS256/ES256 from an identity provider), scoped, expiring, for one
issuer and audience; tenants; the one dependency every job route goes through."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from dimflow.settings import Settings
from service.auth import Principal, TokenRefused, create_token, require, signing_key, verify

SECRET = "unit-test-signing-key-0123456789abcdef0123"
OTHER = "another-unit-test-key-0123456789abcdef0"


def _settings(tmp_path: Path | None = None, secret: str | None = SECRET, **kw) -> Settings:
    return Settings(jwt_secret=secret, data_dir=tmp_path or Path("."), **kw)


def _claims(**over) -> dict:
    """Good claims unless overridden; tokens made at collection time stay valid a day, whenever they run."""
    now = int(time.time())
    c = {"iss": "dimflow", "aud": "dimflow-api", "sub": "x", "scope": "drawings:read", "iat": now,
         "exp": now + 24 * 3600}  # fmt: skip
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def test_a_token_round_trips_with_its_subject_scopes_and_tenant() -> None:
    s = _settings()
    who = verify(create_token("plm-bridge", ["drawings:submit", "drawings:read"], 60, s, tenant="plant-7"), s)
    assert who.sub == "plm-bridge" and who.scopes == {"drawings:submit", "drawings:read"} and who.token_id
    assert who.tenant == "plant-7" and who.owner_tags() == ["by:plm-bridge", "tenant:plant-7"]


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (jwt.encode(_claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"), jwt.ExpiredSignatureError),
        (jwt.encode(_claims(), OTHER, algorithm="HS256"), jwt.InvalidSignatureError),
        (jwt.encode(_claims(), None, algorithm="none"), jwt.InvalidAlgorithmError),
        (jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"), jwt.InvalidAudienceError),
        (jwt.encode(_claims(aud=None), SECRET, algorithm="HS256"), jwt.MissingRequiredClaimError),
        (jwt.encode(_claims(iss="evil"), SECRET, algorithm="HS256"), jwt.InvalidIssuerError),
        (jwt.encode(_claims(iat=None), SECRET, algorithm="HS256"), jwt.MissingRequiredClaimError),
        (jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"), jwt.MissingRequiredClaimError),
        (jwt.encode(_claims(), SECRET, algorithm="HS512"), jwt.InvalidAlgorithmError),
        ("not.a.token", jwt.DecodeError),
    ],
    ids=["expired", "forged", "alg-none", "wrong-aud", "no-aud", "wrong-iss", "no-iat", "no-exp", "hs512", "garbage"],
)
def test_bad_tokens_are_refused_for_their_reason(token: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify(token, _settings())


def test_unknown_scope_empty_subject_and_short_secret_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scope"):
        create_token("x", ["drawings:delete"], 60, _settings())
    with pytest.raises(ValueError, match="subject"):
        create_token(" ", ["admin"], 60, _settings())
    with pytest.raises(ValueError, match="32"):
        signing_key(_settings(secret="short"))


def test_the_old_variable_name_still_sets_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIMFLOW_API_SECRET", SECRET)
    assert Settings().jwt_secret.get_secret_value() == SECRET


def test_without_a_secret_one_is_generated_once_private_to_the_owner(tmp_path: Path) -> None:
    s = _settings(tmp_path, secret=None)
    key = signing_key(s)
    path = tmp_path.resolve() / "api-secret"
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(_settings(tmp_path, secret=None)) == key
    assert verify(create_token("a", ["admin"], 60, s), s).sub == "a"


def _pem(private) -> bytes:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return private.public_key().public_bytes(serialization.Encoding.PEM, fmt)


@pytest.mark.parametrize(("make", "alg"), [(lambda: rsa.generate_private_key(65537, 2048), "RS256"),
                                           (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256")])  # fmt: skip
def test_an_identity_providers_public_key_checks_its_tokens_and_refuses_confusion(tmp_path: Path, make, alg) -> None:
    private = make()
    pem = tmp_path / "idp.pem"
    pem.write_bytes(_pem(private))
    s = _settings(tmp_path, jwt_public_key=pem)
    who = verify(jwt.encode(_claims(sub="alice", scp=["drawings:read", "drawings:submit"], scope=None), private,
                            algorithm=alg), s)  # fmt: skip
    assert who.sub == "alice" and who.scopes == {"drawings:read", "drawings:submit"}
    with pytest.raises(jwt.InvalidTokenError):  # HS256 "signed" with the public key's bytes: algorithm confusion
        verify(jwt.encode(_claims(), SECRET, algorithm="HS256"), s)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwt.encode(_claims(), make(), algorithm=alg), s)  # another provider's key
    with pytest.raises(ValueError, match="identity provider"):
        create_token("x", ["admin"], 60, s)


def test_a_jwks_file_picks_the_key_by_kid(tmp_path: Path) -> None:
    k1, k2 = rsa.generate_private_key(65537, 2048), rsa.generate_private_key(65537, 2048)
    jwks = {"keys": [dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), kid=kid, alg="RS256")
                     for k, kid in ((k1, "one"), (k2, "two"))]}  # fmt: skip
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    s = _settings(tmp_path, jwt_jwks=tmp_path / "jwks.json")
    assert verify(jwt.encode(_claims(sub="b"), k2, algorithm="RS256", headers={"kid": "two"}), s).sub == "b"
    with pytest.raises(jwt.InvalidSignatureError):
        verify(jwt.encode(_claims(), k2, algorithm="RS256", headers={"kid": "one"}), s)
    with pytest.raises(TokenRefused, match="no key"):
        verify(jwt.encode(_claims(), k1, algorithm="RS256", headers={"kid": "three"}), s)


def test_tenancy_a_job_is_its_submitters_within_the_tenant_admin_sees_all() -> None:
    alice = Principal("alice", frozenset({"drawings:read"}), "t")
    alice_p7 = Principal("alice", frozenset({"drawings:read"}), "t", tenant="p7")
    admin = Principal("root", frozenset({"admin"}), "t")
    assert alice.may_see(["dimflow-job", "by:alice"]) and not alice.may_see(["dimflow-job", "by:bob"])
    assert not alice.may_see(["by:alice", "tenant:p7"]) and alice_p7.may_see(["by:alice", "tenant:p7"])
    assert not alice_p7.may_see(["by:alice", "tenant:p8"]) and not alice_p7.may_see(["by:alice"])
    assert admin.may_see(["by:bob", "tenant:p9"]) and not alice.may_see(None)


def _app() -> TestClient:
    app = FastAPI()
    app.state.settings = _settings()

    @app.get("/read")
    def read(who=Depends(require("drawings:read"))) -> dict:  # noqa: B008
        return {"sub": who.sub}

    return TestClient(app)


@pytest.mark.parametrize(
    ("header", "status", "challenge"),
    [(None, 401, "Bearer"), ("Basic dXNlcjpwYXNz", 401, "Bearer"), ("Bearer garbage", 401, 'error="invalid_token"'),
     (f"Bearer {jwt.encode(_claims(exp=int(time.time()) - 120), SECRET, algorithm='HS256')}", 401, "expired"),
     (f"Bearer {jwt.encode(_claims(scope='drawings:submit'), SECRET, algorithm='HS256')}", 403, "insufficient_scope"),
     (f"Bearer {jwt.encode(_claims(), SECRET, algorithm='HS256')}", 200, None)],
    ids=["none", "basic", "garbage", "expired", "scope", "ok"],
)  # fmt: skip
def test_the_dependency_answers_401_with_a_challenge_or_403(header: str | None, status: int, challenge) -> None:
    r = _app().get("/read", headers={"Authorization": header} if header else {})
    assert r.status_code == status, r.text
    if challenge:
        assert challenge in r.headers["www-authenticate"], r.headers
