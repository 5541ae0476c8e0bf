"""LocalStorage: write-once, atomic, race-free puts; key validation; choosing a store from a URL."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from blocks import LocalResultStorage
from dimflow.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageConflict,
    StorageError,
    storage_from_url,
)
from tests.storage_race import race_puts


def _tree(root: Path) -> list[str]:
    """Every file under root, temp files included, so a leftover would show up."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "results")


def test_put_get_exists_roundtrip(store: LocalStorage) -> None:
    assert isinstance(store, Storage)
    assert not store.exists("job-1/dims.json")
    uri = store.put("job-1/dims.json", b'{"dims": []}', "application/json")
    assert uri == (store.root / "job-1" / "dims.json").as_uri()
    assert uri == store.uri("job-1/dims.json")
    assert store.exists("job-1/dims.json")
    assert store.get("job-1/dims.json") == b'{"dims": []}'
    assert _tree(store.root) == ["job-1/dims.json"]


def test_get_missing_is_file_not_found(store: LocalStorage) -> None:
    with pytest.raises(FileNotFoundError):
        store.get("nope.json")


def test_same_bytes_again_is_idempotent(store: LocalStorage) -> None:
    first = store.put("a/b.png", b"\x89PNG-bytes")
    assert store.put("a/b.png", b"\x89PNG-bytes") == first
    assert store.get("a/b.png") == b"\x89PNG-bytes"
    assert _tree(store.root) == ["a/b.png"]


def test_different_bytes_conflict_and_leave_original(store: LocalStorage) -> None:
    store.put("t.csv", b"a,b\n1,2\n")
    with pytest.raises(StorageConflict) as info:
        store.put("t.csv", b"a,b\n1,3\n")
    err = info.value
    assert err.stored_sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert err.new_sha256 == hashlib.sha256(b"a,b\n1,3\n").hexdigest()
    assert "t.csv" in str(err) and err.stored_sha256 in str(err) and err.new_sha256 in str(err)
    assert isinstance(err, StorageError)
    assert store.get("t.csv") == b"a,b\n1,2\n"
    assert _tree(store.root) == ["t.csv"]


def test_final_name_appears_only_after_data_is_synced(store: LocalStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    # readers must never see a partial object: at fsync time the data exists only under a temp name
    real_fsync = os.fsync
    seen: list[bool] = []

    def watching_fsync(fd: int) -> None:
        seen.append((store.root / "x.json").exists())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    store.put("x.json", b"{}")
    assert seen and seen[0] is False
    assert store.get("x.json") == b"{}"


@pytest.mark.parametrize("fail_at", ["fsync", "link"])
def test_failure_mid_write_leaves_nothing(store: LocalStorage, monkeypatch: pytest.MonkeyPatch, fail_at: str) -> None:
    def boom(*args: object) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(os, fail_at, boom)
    with pytest.raises((OSError, StorageError)):
        store.put("deep/x.json", b'{"partial": false}')
    monkeypatch.undo()
    assert not store.exists("deep/x.json")
    assert _tree(store.root) == []  # no final file, no stray temp file
    # and the key is still free for a later, successful write
    store.put("deep/x.json", b"{}")
    assert _tree(store.root) == ["deep/x.json"]


def test_concurrent_different_puts_exactly_one_wins(store: LocalStorage) -> None:
    n = 16
    outcomes = race_puts(store, "race/result.json", [f"writer {i}".encode() * 1000 for i in range(n)])
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert len(winners) == 1, outcomes
    assert sorted(outcomes.values()).count("conflict") == n - 1, outcomes
    assert store.get("race/result.json") == f"writer {winners[0]}".encode() * 1000
    assert _tree(store.root) == ["race/result.json"]


def test_concurrent_same_puts_all_succeed(store: LocalStorage) -> None:
    outcomes = race_puts(store, "same.json", [b"identical"] * 8)
    assert set(outcomes.values()) == {"won"}, outcomes
    assert _tree(store.root) == ["same.json"]


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/", "./a", "a\\b", "a/./b", "nul\x00byte"],
)
def test_bad_keys_rejected(store: LocalStorage, key: str) -> None:
    for call in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.exists(key)):
        with pytest.raises(ValueError):
            call()
    assert not store.root.exists() or _tree(store.root) == []


def test_key_under_an_existing_file_is_a_storage_error(store: LocalStorage) -> None:
    store.put("a", b"file")
    with pytest.raises(StorageError):
        store.put("a/b", b"x")


def test_storage_from_url(tmp_path: Path) -> None:
    local = storage_from_url(str(tmp_path / "r"))
    assert isinstance(local, LocalStorage) and local.root == tmp_path / "r"
    via_file = storage_from_url((tmp_path / "r").as_uri())
    assert isinstance(via_file, LocalStorage) and via_file.root == tmp_path / "r"
    relative = storage_from_url("out/results")
    assert isinstance(relative, LocalStorage) and relative.root == Path.cwd() / "out" / "results"

    s3 = storage_from_url("s3://my-bucket/dimflow/results/", endpoint_url="http://127.0.0.1:9000")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("my-bucket", "dimflow/results", "http://127.0.0.1:9000")
    assert s3.uri("job/dims.json") == "s3://my-bucket/dimflow/results/job/dims.json"
    assert storage_from_url("s3://my-bucket").uri("k") == "s3://my-bucket/k"

    for bad in ("s3:///no-bucket", "gs://bucket/x", "file://otherhost/x"):
        with pytest.raises(ValueError):
            storage_from_url(bad)


def test_s3_store_validates_keys_without_a_server() -> None:
    s3 = S3Storage(bucket="b-x", prefix="p")
    with pytest.raises(ValueError):
        s3.uri("../x")
    assert s3._client is None  # building a store does not touch the network


def test_s3_store_encryption_parameters() -> None:
    assert S3Storage(bucket="b")._sse_args() == {}
    assert S3Storage(bucket="b", sse="AES256")._sse_args() == {"ServerSideEncryption": "AES256"}
    assert S3Storage(bucket="b", sse="aws:kms")._sse_args() == {"ServerSideEncryption": "aws:kms"}
    kms = S3Storage(bucket="b", sse="aws:kms", sse_kms_key_id="alias/dimflow")
    assert kms._sse_args() == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/dimflow"}
    with pytest.raises(ValueError, match="sse must be one of"):
        S3Storage(bucket="b", sse="aws:kms:dsse")
    for sse in (None, "AES256"):  # a key id S3 would ignore or refuse is a configuration mistake
        with pytest.raises(ValueError, match="needs sse='aws:kms'"):
            S3Storage(bucket="b", sse=sse, sse_kms_key_id="k")


def test_storage_from_url_takes_encryption_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from dimflow.settings import Settings, get_settings

    monkeypatch.setenv("DIMFLOW_S3_SSE", "aws:kms")
    monkeypatch.setenv("DIMFLOW_S3_SSE_KMS_KEY_ID", "arn:aws:kms:eu-west-1:111122223333:key/k-1")
    get_settings.cache_clear()
    try:
        s3 = storage_from_url("s3://b/p")
        assert isinstance(s3, S3Storage)
        assert (s3.sse, s3.sse_kms_key_id) == ("aws:kms", "arn:aws:kms:eu-west-1:111122223333:key/k-1")
        explicit = storage_from_url("s3://b/p", sse="AES256")  # a caller's own choice wins over the settings
        assert isinstance(explicit, S3Storage) and (explicit.sse, explicit.sse_kms_key_id) == ("AES256", None)
        assert isinstance(storage_from_url("out/results"), LocalStorage)  # local stores ignore the setting
        monkeypatch.setenv("DIMFLOW_S3_SSE", "DES")
        with pytest.raises(ValidationError):
            Settings()
    finally:
        get_settings.cache_clear()


def test_local_block_gives_local_storage(tmp_path: Path) -> None:
    store = LocalResultStorage(root=str(tmp_path / "blk")).storage()
    assert isinstance(store, LocalStorage)
    assert store.put("k.json", b"1") == (tmp_path / "blk" / "k.json").as_uri()
    assert LocalResultStorage().root == "out/results"
