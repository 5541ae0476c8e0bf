"""Who is calling: signed bearer tokens with scopes, checked by one dependency on every route but
health and metrics (the next layer, tenants and rate limits, hooks in here)."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dimflow.settings import Settings, get_settings

SCOPES = ("drawings:submit", "drawings:read", "admin")
ALGORITHM = "HS256"
ISSUER = "dimflow"


@dataclass(frozen=True)
class Principal:
    sub: str
    scopes: frozenset[str]
    token_id: str


def signing_key(settings: Settings | None = None) -> bytes:
    """The key tokens are signed with: DIMFLOW_API_SECRET, else one generated once into
    data_dir/api-secret (mode 0600), so `dimflow token create` and `dimflow api` on one machine agree."""
    s = settings or get_settings()
    if s.api_secret is not None:
        key = s.api_secret.get_secret_value().encode()
        if len(key) < 32:
            raise ValueError("DIMFLOW_API_SECRET must be at least 32 characters (HS256 needs a 256-bit key)")
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


def create_token(sub: str, scopes: list[str], ttl_s: int = 24 * 3600, settings: Settings | None = None) -> str:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not sub.strip():
        raise ValueError("a token needs a subject (--sub): who or what system uses it")
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": sub, "scope": " ".join(sorted(set(scopes))), "iat": now, "nbf": now,
              "exp": now + ttl_s, "jti": uuid.uuid4().hex}  # fmt: skip
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def verify(token: str, settings: Settings | None = None) -> Principal:
    """The token's principal; jwt.InvalidTokenError when it is forged, expired or malformed."""
    claims = jwt.decode(token, signing_key(settings), algorithms=[ALGORITHM], issuer=ISSUER,
                        options={"require": ["exp", "iat", "sub", "jti"]})  # fmt: skip
    return Principal(sub=str(claims["sub"]), scopes=frozenset(str(claims.get("scope", "")).split()),
                     token_id=str(claims["jti"]))  # fmt: skip


_bearer = HTTPBearer(auto_error=False, description="a token from `dimflow token create`")


def require(scope: str):
    """A route dependency: a valid token holding `scope` (or admin), else 401/403 with the reason."""

    def check(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer":
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token; create one with "
                                "`dimflow token create`", headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            who = verify(creds.credentials, getattr(request.app.state, "settings", None))
        except jwt.ExpiredSignatureError:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "token expired; create a new one",
                                headers={"WWW-Authenticate": "Bearer"}) from None  # fmt: skip
        except jwt.InvalidTokenError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid token ({exc})",
                                headers={"WWW-Authenticate": "Bearer"}) from None  # fmt: skip
        if scope not in who.scopes and "admin" not in who.scopes:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this token lacks the {scope!r} scope")
        return who

    return check
