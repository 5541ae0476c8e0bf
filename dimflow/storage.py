"""Result storage: write-once objects (JSON results, ballooned PNGs, CSV tables) under string keys.

A key names one result forever. `put` is atomic (a reader sees the whole object or nothing) and never
replaces a different object: storing the same bytes again succeeds, so a retried task is harmless, while
different bytes raise `StorageConflict` and leave the stored object as it was.

Two backends: `LocalStorage` (a folder; the default) and `S3Storage` (any S3-compatible server, via boto3).
`storage_from_url` picks one from a URL such as `out/results`, `file:///srv/results` or `s3://bucket/prefix`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

S3Client = Any  # boto3 clients are generated at run time; no stubs are a dependency

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StorageError(RuntimeError):
    """The store could not do what was asked (server or filesystem error, not a missing object)."""


class StorageConflict(StorageError):
    """A different object is already stored under the key; results are write-once, so this is a bug upstream."""

    def __init__(self, uri: str, stored_sha256: str, new_sha256: str) -> None:
        super().__init__(
            f"{uri} already holds a different object (stored sha256 {stored_sha256}, new sha256 {new_sha256})"
        )
        self.uri = uri
        self.stored_sha256 = stored_sha256
        self.new_sha256 = new_sha256


@runtime_checkable
class Storage(Protocol):
    """What flows need from a result store; a missing object reads as `FileNotFoundError`."""

    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int: ...

    def uri(self, key: str) -> str: ...

    def keys(self, prefix: str) -> list[str]: ...


def validate_key(key: str) -> str:
    """Return `key` if it is a relative, '/'-separated path that cannot escape the store's root.

    Rejected: empty keys, absolute paths, backslashes, empty segments (`a//b`, `a/`), `.` and `..`
    segments and NUL characters; the same rule applies to both backends so a key that works locally
    also works on S3 and means the same object.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"storage key must be a non-empty string, got {key!r}")
    if "\\" in key or "\x00" in key:
        raise ValueError(f"storage key must not contain backslashes or NUL: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"storage key must be relative: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"storage key has an empty, '.' or '..' segment: {key!r}")
    return key


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_same(uri: str, stored: bytes, data: bytes) -> None:
    if stored != data:
        raise StorageConflict(uri, _sha256(stored), _sha256(data))


def _fsync_dir(folder: Path) -> None:
    """Make a new directory entry durable; some platforms cannot open folders, which only costs durability."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStorage:
    """Objects as files under `root`; URIs are `file://` URIs of absolute paths (`Path.as_uri`).

    `put` writes a temporary file next to the target, fsyncs it and hard-links it to the final name:
    `os.link` fails if the name exists, so two writers cannot both win and there is no window between a
    check and a write. The filesystem must support hard links (local disks and NFS do; FAT and some FUSE
    mounts do not). `content_type` is accepted for interface parity and not recorded.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # absolute at construction so URIs stay valid if the process changes directory later
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        path = self._path(key)
        uri = path.as_uri()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the folder for {uri}: {e}") from e
        # not mkstemp: its files are mode 0600, and the final file *is* this inode; 0666 lets umask decide
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                if not path.is_file():
                    raise StorageError(f"{uri} exists and is not a file") from None
                _check_same(uri, path.read_bytes(), data)
            except OSError as e:
                raise StorageError(f"cannot store {uri}: {e}") from e
            else:
                _fsync_dir(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return uri

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no object stored under this key", path.as_uri()) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under the folder `prefix`, sorted (files being written are not keys yet)."""
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(f"{prefix}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith("."))  # fmt: skip

    def size(self, key: str) -> int:
        """The object's size in bytes, without reading it."""
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "no object stored under this key", path.as_uri())
        return path.stat().st_size


def _error_code(e: Exception) -> tuple[str, int]:
    response = getattr(e, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _missing(e: Exception) -> bool:
    """An S3 error that only says the key is absent (GET answers NoSuchKey, HEAD a bare 404)."""
    code, status = _error_code(e)
    return code in ("NoSuchKey", "404", "NotFound") or status == 404


# S3's ServerSideEncryption values a store may ask for (SSE-C and DSSE-KMS are not supported)
_SSE_MODES = (None, "AES256", "aws:kms")

# a 409 means another conditional write to the same key was in flight; S3 asks the client to retry
_INFLIGHT_ROUNDS = 5


@dataclass(kw_only=True)
class S3Storage:
    """Objects in an S3 bucket under `prefix`; URIs are `s3://bucket/prefix/key`.

    `put` is one PutObject (S3 never exposes a partial object) with `If-None-Match: *`, so the server
    refuses to replace an existing key (412) and there is no check-then-write race. Servers that reject
    the header as unsupported (501 NotImplemented) make this instance fall back to head-then-put, which
    has a small race window between the HEAD and the PUT; servers that silently *ignore* the header
    would overwrite, so for those pass `conditional_writes=False` to get the same head-then-put.

    Credentials left as None come from boto3's usual chain (environment, profile, instance role).
    `sse` asks the server to encrypt every object this store writes: "AES256" (SSE-S3) or "aws:kms"
    (SSE-KMS, with `sse_kms_key_id` - a key id, ARN or alias - or, left None, the account's AWS managed
    key `aws/s3`); None sends no encryption header, so the bucket's default encryption applies.
    Transient errors are retried here and only here, by botocore (standard mode, 5 attempts): the
    tasks that store results do not retry on top. A conflict is never retried; a 409 (another
    conditional write to the key in flight) is waited out for a few rounds, then reported.
    """

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    conditional_writes: bool = True
    sse: str | None = None
    sse_kms_key_id: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    _client: S3Client | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.bucket or "/" in self.bucket:
            raise ValueError(f"bad bucket name {self.bucket!r}")
        self.prefix = self.prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        if self.sse not in _SSE_MODES:
            raise ValueError(f"sse must be one of {_SSE_MODES}, got {self.sse!r}")
        if self.sse_kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError(f"an SSE-KMS key id needs sse='aws:kms', not {self.sse!r}")

    def _sse_args(self) -> dict[str, str]:
        """PutObject's encryption parameters; empty when no server-side encryption is asked for."""
        if self.sse is None:
            return {}
        args = {"ServerSideEncryption": self.sse}
        if self.sse_kms_key_id:
            args["SSEKMSKeyId"] = self.sse_kms_key_id
        return args

    def client(self) -> S3Client:
        """The boto3 client, built on first use so that constructing a store (e.g. in a Block) costs nothing."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                # boto3 clients are thread-safe, sessions are not: one private session per store
                session = boto3.session.Session(
                    aws_access_key_id=self.aws_access_key_id,
                    aws_secret_access_key=self.aws_secret_access_key,
                    aws_session_token=self.aws_session_token,
                    region_name=self.region,
                )
                self._client = session.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": 5},
                        connect_timeout=self.connect_timeout,
                        read_timeout=self.read_timeout,
                    ),
                )
            return self._client

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{quote(self._key(key), safe='/')}"

    def _read(self, full_key: str) -> bytes | None:
        """The stored bytes, or None if the key is absent."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client().get_object(Bucket=self.bucket, Key=full_key)["Body"].read()
        except ClientError as e:
            if _missing(e):
                return None
            raise StorageError(f"cannot read s3://{self.bucket}/{full_key}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot read s3://{self.bucket}/{full_key}: {e}") from e

    def _write_if_absent(self, full_key: str, data: bytes, content_type: str) -> bool | None:
        """Write unless the key exists: True written, False exists, None unknown (concurrent write in flight)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        if not self.conditional_writes:
            # fallback for servers without conditional writes: a racing writer between HEAD and PUT can win
            if self._exists(full_key):
                return False
            try:
                client.put_object(
                    Bucket=self.bucket, Key=full_key, Body=data, ContentType=content_type, **self._sse_args()
                )
            except (ClientError, BotoCoreError) as e:
                raise StorageError(f"cannot write s3://{self.bucket}/{full_key}: {e}") from e
            return True
        try:
            client.put_object(
                Bucket=self.bucket,
                Key=full_key,
                Body=data,
                ContentType=content_type,
                IfNoneMatch="*",
                **self._sse_args(),
            )
        except ClientError as e:
            code, status = _error_code(e)
            if code == "PreconditionFailed" or status == 412:
                return False
            if code == "ConditionalRequestConflict" or status == 409:
                return None
            if code == "NotImplemented" or status == 501:
                log.warning("%s does not support If-None-Match; falling back to head-then-put", self.endpoint_url)
                self.conditional_writes = False
                return self._write_if_absent(full_key, data, content_type)
            raise StorageError(f"cannot write s3://{self.bucket}/{full_key}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot write s3://{self.bucket}/{full_key}: {e}") from e
        return True

    def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> str:
        full_key = self._key(key)
        uri = self.uri(key)
        for attempt in range(_INFLIGHT_ROUNDS):
            written = self._write_if_absent(full_key, data, content_type)
            if written:
                return uri
            stored = self._read(full_key) if written is False else None
            if stored is not None:
                _check_same(uri, stored, data)
                return uri
            # a concurrent write was in flight (409), or the object vanished between refusal and read
            time.sleep(0.05 * 2**attempt)
        raise StorageError(f"cannot write {uri}: other writers kept the key busy")

    def get(self, key: str) -> bytes:
        data = self._read(self._key(key))
        if data is None:
            raise FileNotFoundError(errno.ENOENT, "no object stored under this key", self.uri(key))
        return data

    def _head(self, full_key: str) -> dict | None:
        """The object's metadata, or None if the key is absent."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client().head_object(Bucket=self.bucket, Key=full_key)
        except ClientError as e:
            if _missing(e):
                return None
            raise StorageError(f"cannot check s3://{self.bucket}/{full_key}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot check s3://{self.bucket}/{full_key}: {e}") from e

    def _exists(self, full_key: str) -> bool:
        return self._head(full_key) is not None

    def exists(self, key: str) -> bool:
        return self._exists(self._key(key))

    def keys(self, prefix: str) -> list[str]:
        """Every stored key under the folder `prefix`, sorted."""
        from botocore.exceptions import BotoCoreError, ClientError

        full = self._key(prefix) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        out: list[str] = []
        try:
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                out += [o["Key"][cut:] for o in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as e:
            raise StorageError(f"cannot list s3://{self.bucket}/{full}: {e}") from e
        return sorted(out)

    def size(self, key: str) -> int:
        """The object's size in bytes from a HEAD request, without fetching it."""
        head = self._head(self._key(key))
        if head is None:
            raise FileNotFoundError(errno.ENOENT, "no object stored under this key", self.uri(key))
        return int(head["ContentLength"])


def sse_from_settings() -> dict[str, str | None]:
    """S3Storage's `sse` and `sse_kms_key_id` from the settings (DIMFLOW_S3_SSE, DIMFLOW_S3_SSE_KMS_KEY_ID)."""
    from dimflow.settings import get_settings

    s = get_settings()
    return {"sse": s.s3_sse, "sse_kms_key_id": s.s3_sse_kms_key_id}


def storage_from_url(url: str, **kw: Any) -> Storage:
    """A store from a URL: `s3://bucket/prefix` -> S3Storage (`kw` as its fields), a path or `file://` URL -> local.

    An S3 store encrypts what it writes as the settings say (DIMFLOW_S3_SSE, DIMFLOW_S3_SSE_KMS_KEY_ID)
    unless `kw` names `sse` or `sse_kms_key_id` itself."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"s3 URL needs a bucket: {url!r}")
        if "sse" not in kw and "sse_kms_key_id" not in kw:
            kw |= sse_from_settings()
        return S3Storage(bucket=parsed.netloc, prefix=parsed.path, **kw)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URL must name a local path: {url!r}")
        return LocalStorage(url2pathname(parsed.path), **kw)
    if parsed.scheme:
        raise ValueError(f"unsupported storage URL scheme {parsed.scheme!r} in {url!r}")
    return LocalStorage(url, **kw)
