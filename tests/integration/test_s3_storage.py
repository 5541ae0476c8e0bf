"""S3Storage against a real S3-compatible server (moto_server in a subprocess): same contract as local."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from blocks import S3ResultStorage
from dimflow.storage import S3Storage, StorageConflict, storage_from_url
from tests.servers import free_port, stop, wait_until_answers
from tests.storage_race import race_puts

pytestmark = pytest.mark.integration

if importlib.util.find_spec("moto") is None:
    pytest.skip(
        "moto is not installed (pip install 'moto[server]'); no S3-compatible server to test against",
        allow_module_level=True,
    )

BUCKET = "dimflow-results"


def _moto_command(port: int) -> list[str]:
    # the console script next to this interpreter, so the test uses the venv's moto even if PATH does not
    script = Path(sys.executable).with_name("moto_server")
    exe = str(script) if script.exists() else shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto is importable but its moto_server script is missing (install 'moto[server]')")
    return [exe, "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(_moto_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(proc, f"{url}/moto-api/", "moto_server", 60, lambda: _stderr(proc))
        yield url
    finally:
        stop(proc, 10)


def _stderr(proc: subprocess.Popen) -> str:
    return proc.stderr.read().decode(errors="replace") if proc.stderr and proc.poll() is not None else ""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # dummy credentials for this test only; no profile or real account can leak in
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def store(endpoint: str, aws_env: None, request: pytest.FixtureRequest) -> S3Storage:
    s3 = S3Storage(bucket=BUCKET, prefix=f"runs/{request.node.name}", endpoint_url=endpoint)
    existing = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
    if BUCKET not in existing:
        s3.client().create_bucket(Bucket=BUCKET)
    return s3


def test_put_get_exists_roundtrip(store: S3Storage) -> None:
    key = "job-1/dims.json"
    assert not store.exists(key)
    uri = store.put(key, b'{"dims": []}', "application/json")
    assert uri == f"s3://{BUCKET}/{store.prefix}/{key}" == store.uri(key)
    assert store.exists(key)
    assert store.get(key) == b'{"dims": []}'
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/{key}")
    assert head["ContentType"] == "application/json"
    with pytest.raises(FileNotFoundError):
        store.get("missing.json")


def test_same_bytes_again_is_idempotent(store: S3Storage) -> None:
    first = store.put("b.png", b"\x89PNG-bytes", "image/png")
    assert store.put("b.png", b"\x89PNG-bytes", "image/png") == first
    assert store.get("b.png") == b"\x89PNG-bytes"


def test_different_bytes_conflict_and_leave_original(store: S3Storage) -> None:
    store.put("t.csv", b"a,b\n1,2\n", "text/csv")
    etag = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/t.csv")["ETag"]
    with pytest.raises(StorageConflict) as info:
        store.put("t.csv", b"a,b\n1,3\n", "text/csv")
    assert info.value.stored_sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert info.value.new_sha256 == hashlib.sha256(b"a,b\n1,3\n").hexdigest()
    assert "t.csv" in str(info.value)
    assert store.get("t.csv") == b"a,b\n1,2\n"
    assert store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/t.csv")["ETag"] == etag


def test_server_refuses_overwrite_itself(store: S3Storage) -> None:
    # the guarantee comes from If-None-Match on the server, not from a client-side check
    from botocore.exceptions import ClientError

    store.put("cond.json", b"1")
    with pytest.raises(ClientError) as info:
        store.client().put_object(Bucket=BUCKET, Key=f"{store.prefix}/cond.json", Body=b"2", IfNoneMatch="*")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert store.get("cond.json") == b"1"


def test_concurrent_different_puts_exactly_one_wins(store: S3Storage) -> None:
    n = 8
    outcomes = race_puts(store, "race.json", [f"writer {i}".encode() for i in range(n)])
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert len(winners) == 1, outcomes
    assert list(outcomes.values()).count("conflict") == n - 1, outcomes
    assert store.get("race.json") == f"writer {winners[0]}".encode()


def test_head_then_put_fallback_keeps_the_contract(store: S3Storage) -> None:
    fallback = S3Storage(bucket=BUCKET, prefix=store.prefix, endpoint_url=store.endpoint_url, conditional_writes=False)
    fallback.put("f.json", b"1")
    assert fallback.put("f.json", b"1") == fallback.uri("f.json")
    with pytest.raises(StorageConflict):
        fallback.put("f.json", b"2")
    assert fallback.get("f.json") == b"1"


def test_storage_from_url(store: S3Storage) -> None:
    s3 = storage_from_url(f"s3://{BUCKET}/{store.prefix}", endpoint_url=store.endpoint_url)
    assert s3.put("u.json", b"{}") == store.uri("u.json")
    assert store.get("u.json") == b"{}"


def test_block_storage_against_server(endpoint: str, store: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    # credentials from the block itself, not the environment
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    block = S3ResultStorage(
        bucket=BUCKET,
        prefix=f"{store.prefix}/block",
        endpoint_url=endpoint,
        aws_access_key_id="block-key",
        aws_secret_access_key="block-secret",
    )
    assert "block-secret" not in repr(block)
    s3 = block.storage()
    assert isinstance(s3, S3Storage) and "block-secret" not in repr(s3)
    uri = s3.put("dims.json", b'{"n": 3}', "application/json")
    assert uri == f"s3://{BUCKET}/{store.prefix}/block/dims.json"
    assert s3.put("dims.json", b'{"n": 3}') == uri
    with pytest.raises(StorageConflict):
        s3.put("dims.json", b'{"n": 4}')
    assert store.get("block/dims.json") == b'{"n": 3}'


def test_size_comes_from_a_head_request(store: S3Storage) -> None:
    store.put("sized.bin", b"x" * 1234)
    assert store.size("sized.bin") == 1234
    with pytest.raises(FileNotFoundError):
        store.size("absent.bin")


def test_a_drawing_is_fetched_from_an_s3_uri_and_refused_by_its_size(
    store: S3Storage, endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`s3://bucket/key` inputs (an upload the worker cannot see as a file): boto3 finds the endpoint
    in AWS_ENDPOINT_URL_S3, as it would find a plant's MinIO."""
    from dimflow.inputs import BadInput, Limits
    from dimflow.stages import fetch
    from dimflow.storage import LocalStorage

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    store.put("in/part-17.pdf", b"%PDF-1.7 stand-in bytes")
    uri = f"s3://{BUCKET}/{store.prefix}/in/part-17.pdf"
    results = LocalStorage(tmp_path)
    assert fetch(uri, results, Limits()) == ("part-17.pdf", b"%PDF-1.7 stand-in bytes")
    with pytest.raises(BadInput) as refused:
        fetch(uri, results, Limits(max_bytes=10))
    assert refused.value.reason == "too_large"
    with pytest.raises(BadInput) as refused:
        fetch(f"s3://{BUCKET}/{store.prefix}/in/absent.pdf", results, Limits())
    assert refused.value.reason == "missing"


# ---------------------------------------------------------------- server-side encryption (DIMFLOW_S3_SSE)


@pytest.fixture
def sse_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set DIMFLOW_S3_SSE[_KMS_KEY_ID] for one test; the cached settings are rebuilt before and after."""
    from dimflow.settings import get_settings

    def set_sse(sse: str | None, key_id: str | None = None) -> None:
        for name, value in (("DIMFLOW_S3_SSE", sse), ("DIMFLOW_S3_SSE_KMS_KEY_ID", key_id)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    set_sse(None)
    yield set_sse
    get_settings.cache_clear()


def _sent_sse_headers(s3: S3Storage) -> list[dict[str, str]]:
    """The encryption headers of every PutObject the store sends from now on (one dict per request)."""
    sent: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        sent.append({k: v for k, v in headers.items() if "server-side-encryption" in k})

    s3.client().meta.events.register("before-send.s3.PutObject", record)
    return sent


@pytest.mark.parametrize("conditional", [True, False], ids=["if-none-match", "head-then-put"])
def test_sse_aes256_from_the_settings(store: S3Storage, sse_env: Callable[..., None], conditional: bool) -> None:
    sse_env("AES256")
    s3 = storage_from_url(
        f"s3://{BUCKET}/{store.prefix}", endpoint_url=store.endpoint_url, conditional_writes=conditional
    )
    assert isinstance(s3, S3Storage) and s3.sse == "AES256"
    sent = _sent_sse_headers(s3)
    s3.put("enc/aes.json", b"{}", "application/json")
    assert s3.put("enc/aes.json", b"{}") == s3.uri("enc/aes.json")  # the idempotent retry path still works
    assert sent and all(h == {"x-amz-server-side-encryption": "AES256"} for h in sent), sent
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/enc/aes.json")
    assert head["ServerSideEncryption"] == "AES256"
    assert "SSEKMSKeyId" not in head


def test_sse_kms_with_a_key_from_the_settings(store: S3Storage, sse_env: Callable[..., None]) -> None:
    import boto3

    key_id = (
        boto3.session.Session(region_name=store.region)
        .client("kms", endpoint_url=store.endpoint_url)
        .create_key(Description="dimflow results (test)")["KeyMetadata"]["KeyId"]
    )
    sse_env("aws:kms", key_id)
    s3 = storage_from_url(f"s3://{BUCKET}/{store.prefix}", endpoint_url=store.endpoint_url)
    sent = _sent_sse_headers(s3)
    s3.put("enc/kms.json", b'{"n": 1}', "application/json")
    assert sent == [{"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": key_id}]
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/enc/kms.json")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)  # the id as sent, or AWS's key ARN ending in it
    assert store.get("enc/kms.json") == b'{"n": 1}'


def test_sse_kms_without_a_key_uses_the_default_key(store: S3Storage, sse_env: Callable[..., None]) -> None:
    sse_env("aws:kms")
    s3 = storage_from_url(f"s3://{BUCKET}/{store.prefix}", endpoint_url=store.endpoint_url)
    sent = _sent_sse_headers(s3)
    s3.put("enc/kms-default.json", b"{}")
    assert sent == [{"x-amz-server-side-encryption": "aws:kms"}]  # no key id: S3 picks the aws/s3 managed key
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/enc/kms-default.json")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_no_sse_setting_sends_no_encryption_header(store: S3Storage, sse_env: Callable[..., None]) -> None:
    s3 = storage_from_url(f"s3://{BUCKET}/{store.prefix}", endpoint_url=store.endpoint_url)
    assert isinstance(s3, S3Storage) and (s3.sse, s3.sse_kms_key_id) == (None, None)
    sent = _sent_sse_headers(s3)
    s3.put("enc/plain.json", b"{}")
    assert sent == [{}]
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/enc/plain.json")
    assert "ServerSideEncryption" not in head  # moto's bucket has no default encryption (AWS's would say AES256)


def test_block_storage_encrypts_as_the_settings_say(
    endpoint: str, store: S3Storage, sse_env: Callable[..., None]
) -> None:
    sse_env("AES256")
    s3 = S3ResultStorage(bucket=BUCKET, prefix=f"{store.prefix}/block", endpoint_url=endpoint).storage()
    s3.put("enc.json", b"{}")
    head = store.client().head_object(Bucket=BUCKET, Key=f"{store.prefix}/block/enc.json")
    assert head["ServerSideEncryption"] == "AES256"
