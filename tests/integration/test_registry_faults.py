"""The registry never changes by accident, and a registry that is down fails processing clearly
and in bounded time. Against a real MLflow server started here, behind a small proxy that
injects failures into the registry's lookups."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dimflow import champions, registry
from dimflow.lifecycle import bootstrap
from dimflow.settings import get_settings
from tests.servers import free_port, stop, wait_until_answers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOOKUPS = ("registered-models/get", "model-versions/get", "model-versions/search")


class FaultyProxy:
    """Forwards HTTP to the MLflow server; `fail(n, status)` answers the next n registry lookups
    with an error instead, as a registry behind a flaky load balancer would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.remaining, self.status, self.failed = upstream_port, 0, 500, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    inject = proxy.remaining > 0 and any(k in self.path for k in LOOKUPS)
                    if inject:
                        proxy.remaining -= 1
                        proxy.failed += 1
                if inject:
                    err = json.dumps({"error_code": "INTERNAL_ERROR", "message": "injected fault"}).encode()
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    self.wfile.write(err)
                    return
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                up.request(self.command, self.path, body=body or None, headers=headers)
                resp = up.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                up.close()

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def fail(self, n: int, status: int = 500) -> None:
        with self.lock:
            self.remaining, self.status, self.failed = n, status, 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen, FaultyProxy, Path]]:
    if not (get_settings().baseline_dir / "reader" / "checksums.json").is_file():
        pytest.skip("the shipped baseline models are missing")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--no-serve-artifacts",
           "--default-artifact-root", (root / "artifacts").as_uri()]  # fmt: skip
    log = (root / "server.log").open("wb")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    server_log = root / "server.log"
    wait_until_answers(proc, f"http://127.0.0.1:{port}/health", "mlflow server", 180, server_log.read_text)
    proxy = FaultyProxy(port)
    try:
        yield proc, proxy, root, f"http://127.0.0.1:{port}"
    finally:
        proxy.close()
        stop(proc)
        log.close()


@pytest.fixture
def registry_at(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FaultyProxy:
    proxy = server[1]
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DIMFLOW_MLFLOW_TRACKING_URI", proxy.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")  # the embedded default (settings.registry_retries)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setattr(champions, "_MODELS", None)
    monkeypatch.setattr(champions, "_LOADED_FOR", {})
    get_settings.cache_clear()
    yield proxy
    proxy.fail(0)
    get_settings.cache_clear()


def _state() -> dict[str, tuple[list[int], dict[str, str]]]:
    """Every model's versions and aliases (read with the proxy's faults off)."""
    _, client = registry._client()
    out = {}
    for name in registry.MODEL_NAMES.values():
        model = client.get_registered_model(name)
        out[name] = (registry.versions(name), dict(model.aliases))
    return out


def test_transient_lookup_failures_never_move_the_champion(registry_at: FaultyProxy, tmp_path: Path) -> None:
    bootstrap()
    trained = tmp_path / "reader-v2"  # a "trained" reader, champion over the shipped one
    shutil.copytree(get_settings().baseline_dir / "reader", trained, ignore=shutil.ignore_patterns("*.md"))
    card = json.loads((trained / "metrics.json").read_text())
    v2 = registry.log_and_register("callout-reader", trained, card["params"], [], {}, "test", alias=registry.CHAMPION)
    before = _state()
    assert before["callout-reader"][1]["champion"] == str(v2.version)

    # failures a retry absorbs: the lookups succeed, nothing changes
    registry_at.fail(2)
    assert champions.get_models().refs["reader"] == f"callout-reader/{v2.version}"
    assert registry_at.failed == 2
    # failures that outlast the retries: the run fails naming the registry, and still nothing changes
    for status in (500, 503, 404):  # a 404 from a proxy is not MLflow's "does not exist"
        registry_at.fail(1000, status)
        t0 = time.monotonic()
        with pytest.raises(registry.RegistryUnavailable, match=registry_at.url):
            champions.get_models(reload=True)
        assert time.monotonic() - t0 < 60
        registry_at.fail(0)
        assert _state() == before
    # a missing alias is "not there", not a failure to look it up, and serving never fills it
    _, client = registry._client()
    client.delete_registered_model_alias("drawing-segmenter", registry.CHAMPION)
    with pytest.raises(registry.RegistryError, match="dimflow models bootstrap"):
        champions.get_models(reload=True)
    assert registry.versions("drawing-segmenter") == before["drawing-segmenter"][0]
    registry.set_alias("drawing-segmenter", registry.CHAMPION, 1)
    assert _state() == before
    assert champions.get_models(reload=True).refs["reader"] == f"callout-reader/{v2.version}"


def test_a_stopped_registry_fails_processing_quickly_and_says_where(
    server, registry_at: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in this module: it stops the server (and talks to it directly, not through the proxy)."""
    from typer.testing import CliRunner

    from cli.app import app

    proc, _, root, url = server
    monkeypatch.setenv("DIMFLOW_MLFLOW_TRACKING_URI", url)
    get_settings.cache_clear()
    proc.terminate()
    proc.wait(timeout=30)
    t0 = time.monotonic()
    with pytest.raises(registry.RegistryUnavailable) as err:
        champions.get_models()
    took = time.monotonic() - t0
    assert url in str(err.value) and "MLflow registry" in str(err.value)
    assert took < 120, took
    print(f"stopped registry: get_models failed in {took:.1f} s: {err.value}")
    drawing = next((Path(__file__).resolve().parents[2] / "samples" / "drawings").glob("*.png"))
    t0 = time.monotonic()
    res = CliRunner().invoke(app, ["process", str(drawing), "--out", str(root / "out")])
    took = time.monotonic() - t0
    assert res.exit_code == 1 and url in res.output and took < 120, (took, res.output)
    print(f"stopped registry: dimflow process exited 1 in {took:.1f} s")
    assert not (root / "out").exists() or not any((root / "out").iterdir())


def test_a_registry_that_accepts_but_never_answers_fails_within_the_timeout(monkeypatch, tmp_path: Path) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel accepts connections; nobody ever answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DIMFLOW_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setattr(champions, "_MODELS", None)
    get_settings.cache_clear()
    try:
        t0 = time.monotonic()
        with pytest.raises(registry.RegistryUnavailable, match=url):
            champions.get_models()
        took = time.monotonic() - t0
        assert took < 40, took  # 3 attempts of 2 s and 1 + 2 s of backoff; MLflow's defaults take over 15 min
        print(f"silent registry: get_models failed in {took:.1f} s")
    finally:
        silent.close()
        get_settings.cache_clear()
