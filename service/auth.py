"""Who is calling: signed bearer tokens with scopes and an optional tenant, checked by one dependency
on every route but health, readiness and metrics.

Two ways to trust a token. A plant without an identity provider signs its own with HS256
(`dimflow token create`; the key is DIMFLOW_JWT_SECRET, else one generated once into the data
folder, never a constant). A plant with one points DIMFLOW_JWT_PUBLIC_KEY (PEM) or DIMFLOW_JWT_JWKS
(a JWKS file, key picked by `kid`) at its keys: tokens are then RS256/ES256 only, so an HS256 token
"signed" with the public key (algorithm confusion) or an unsigned one (`alg: none`) is refused.
Every token must carry `exp`, `iat`, `iss` and `aud`, and they are checked.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dimflow.settings import Settings, get_settings

SCOPES = ("drawings:submit", "drawings:read", "admin")
ASYMMETRIC = ["RS256", "ES256"]
LEEWAY_S = 30  # clock skew between the identity provider and this machine


@dataclass(frozen=True)
class Principal:
    sub: str
    scopes: frozenset[str]
    token_id: str
    tenant: str | None = None

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def owner_tags(self) -> list[str]:
        """The tags a job this principal submits carries: whose it is."""
        return [f"by:{self.sub}", *([f"tenant:{self.tenant}"] if self.tenant else [])]

    def may_see(self, tags: list[str] | None) -> bool:
        """A job is its submitter's (within the tenant, when the token names one); admin sees all."""
        if self.admin:
            return True
        tags = tags or []
        tenants = {t for t in tags if t.startswith("tenant:")}
        return f"by:{self.sub}" in tags and tenants == ({f"tenant:{self.tenant}"} if self.tenant else set())


class TokenRefused(Exception):
    """A token that is not accepted, with the reason a caller can act on."""


def signing_key(settings: Settings | None = None) -> bytes:
    """The HS256 key: DIMFLOW_JWT_SECRET, else one generated once into data_dir/api-secret (mode
    0600), so `dimflow token create` and `dimflow api` on one machine agree."""
    s = settings or get_settings()
    if s.jwt_secret is not None:
        key = s.jwt_secret.get_secret_value().encode()
        if len(key) < 32:
            raise ValueError("DIMFLOW_JWT_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
        return key
    return _key_file(str(Path(s.data_dir).resolve() / "api-secret"))


@lru_cache(maxsize=4)
def _key_file(where: str) -> bytes:
    path = Path(where)
    if not path.exists():  # written whole, then linked into place: a racing process sees all of it or none
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it first; use theirs
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds a key shorter than 32 bytes; delete it to generate a new one")
    return key


def asymmetric(settings: Settings) -> bool:
    return settings.jwt_public_key is not None or settings.jwt_jwks is not None


@lru_cache(maxsize=8)
def _public_key(path: str, mtime: float) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(Path(path).read_bytes())


@lru_cache(maxsize=8)
def _jwks(path: str, mtime: float) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict(json.loads(Path(path).read_text()))


def _verification_key(token: str, s: Settings) -> tuple[Any, list[str]]:
    if s.jwt_jwks is not None:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = _jwks(str(s.jwt_jwks), s.jwt_jwks.stat().st_mtime)  # a rotated file is read again
        match = [k for k in keys.keys if k.key_id == kid] if kid else list(keys.keys)
        if len(match) != 1:
            raise TokenRefused(f"no key {kid!r} in the JWKS" if kid else "the token names no key (kid)")
        if match[0].algorithm_name not in ASYMMETRIC:  # the key's `alg` (or its type's default)
            raise TokenRefused(f"key {kid!r} is for {match[0].algorithm_name}, not one of {', '.join(ASYMMETRIC)}")
        return match[0].key, [match[0].algorithm_name]
    if s.jwt_public_key is not None:
        return _public_key(str(s.jwt_public_key), s.jwt_public_key.stat().st_mtime), ASYMMETRIC
    return signing_key(s), ["HS256"]


def create_token(sub: str, scopes: list[str], ttl_s: int = 24 * 3600, settings: Settings | None = None,
                 tenant: str | None = None) -> str:  # fmt: skip
    """An HS256 token for an operator or a system (plants with an identity provider issue their own)."""
    s = settings or get_settings()
    if asymmetric(s):
        raise ValueError("this service trusts an identity provider's keys (DIMFLOW_JWT_PUBLIC_KEY/JWKS): "
                         "tokens come from it, not from `dimflow token create`")  # fmt: skip
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not sub.strip():
        raise ValueError("a token needs a subject (--sub): who or what system uses it")
    if ttl_s < 1:
        raise ValueError("a token's lifetime (--ttl) must be at least 1 second")
    now = int(time.time())
    claims = {"iss": s.jwt_issuer, "aud": s.jwt_audience, "sub": sub, "scope": " ".join(sorted(set(scopes))),
              "iat": now, "nbf": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}  # fmt: skip
    if tenant:
        claims["tenant"] = tenant
    return jwt.encode(claims, signing_key(s), algorithm="HS256")


def verify(token: str, settings: Settings | None = None) -> Principal:
    """The token's principal; jwt.InvalidTokenError or TokenRefused when it is forged, expired,
    meant for another audience or issuer, or malformed."""
    s = settings or get_settings()
    key, algorithms = _verification_key(token, s)
    claims = jwt.decode(token, key, algorithms=algorithms, issuer=s.jwt_issuer, audience=s.jwt_audience,
                        leeway=LEEWAY_S, options={"require": ["exp", "iat", "iss", "aud", "sub"]})  # fmt: skip
    raw = claims.get("scope", claims.get("scp", ""))
    scopes = frozenset(raw.split() if isinstance(raw, str) else [str(x) for x in raw])
    tenant = claims.get("tenant")
    return Principal(sub=str(claims["sub"]), scopes=scopes, token_id=str(claims.get("jti", "")),
                     tenant=str(tenant) if tenant else None)  # fmt: skip


_bearer = HTTPBearer(auto_error=False, description="from `dimflow token create` or the plant's identity provider")


def _refused(request: Request, why: str, error: str = "invalid_token") -> HTTPException:
    request.state.auth_refused = why
    challenge = f'Bearer realm="dimflow", error="{error}", error_description="{why}"' if error else "Bearer"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, why, headers={"WWW-Authenticate": challenge})


def require(scope: str):
    """A route dependency: a valid token holding `scope` (or admin), else 401 (with the reason and a
    WWW-Authenticate challenge) or 403. The principal is kept on the request for the audit log."""

    def check(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _refused(request, "missing bearer token; create one with `dimflow token create`", error="")
        settings = getattr(request.app.state, "settings", None) or get_settings()
        try:
            who = verify(creds.credentials, settings)
        except jwt.ExpiredSignatureError:
            raise _refused(request, "token expired; create a new one") from None
        except (jwt.InvalidTokenError, TokenRefused) as exc:
            raise _refused(request, f"invalid token ({str(exc).replace(chr(34), chr(39))})") from None
        request.state.principal = who
        if scope not in who.scopes and not who.admin:
            request.state.auth_refused = f"missing scope {scope}"
            challenge = f'Bearer error="insufficient_scope", scope="{scope}"'
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token lacks the {scope!r} scope",
                                headers={"WWW-Authenticate": challenge})  # fmt: skip
        return who

    return check
