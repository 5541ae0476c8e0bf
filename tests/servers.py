"""Servers the integration tests start on loopback: a free port, waiting until one answers, stopping it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from service.prefect_server import SERVER_ENV

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(
    proc: subprocess.Popen, url: str, name: str, timeout_s: float, output: Callable[[], str]
) -> None:
    """Poll `url` until it answers; fail the test with the server's own output if it exits or stays silent."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{name} exited with {proc.returncode}: {output()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{name} did not answer within {timeout_s:.0f} s: {output()[-2000:]}")
            time.sleep(0.2)


def stop(proc: subprocess.Popen, timeout_s: float = 20) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_prefect(
    home: Path, env: dict[str, str], database: str | None = None, timeout_s: float = 240
) -> tuple[subprocess.Popen, str]:
    """A Prefect server of the test's own (on `database`, else sqlite under `home`) on a loopback
    port; returns it and its API URL."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "server.log"
    env = SERVER_ENV | env | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if database:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    wait_until_answers(proc, f"{api}/health", "prefect server", timeout_s, lambda: log.read_text(errors="replace"))
    return proc, api


def start_mlflow(root: Path, env: dict[str, str], timeout_s: float = 180) -> tuple[subprocess.Popen, str]:
    """An MLflow tracking server (sqlite store, artifacts served over HTTP from `root`) on a loopback port."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"
    cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--serve-artifacts",
           "--artifacts-destination", (root / "artifacts").as_uri()]  # fmt: skip
    quiet = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job consumers
    proc = subprocess.Popen(cmd, env=env | quiet, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answers(proc, f"{url}/health", "mlflow server", timeout_s, lambda: log.read_text(errors="replace"))
    return proc, url


def postgres_database() -> tuple[str | None, str | None]:
    """A fresh database on the machine's PostgreSQL for the Prefect server; (None, None) if it does not answer."""
    if not shutil.which("psql"):
        return None, None
    name = f"dimflow_test_{uuid.uuid4().hex[:8]}"
    for user in ("postgres", "root"):
        try:
            sql = ["-c", f"CREATE DATABASE {name}"]
            r = subprocess.run(["psql", "-h", "127.0.0.1", "-U", user, "-d", "postgres", *sql], capture_output=True,
                               timeout=20)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None, None
        if r.returncode == 0:
            return f"postgresql+asyncpg://{user}@127.0.0.1:5432/{name}", f"{user}:{name}"
    return None, None


def drop_database(which: str | None) -> None:
    if which:
        user, name = which.split(":")
        sql = ["-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", user, "-d", "postgres", *sql], capture_output=True, timeout=60)
