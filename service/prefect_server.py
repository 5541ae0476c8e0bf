"""The Prefect API the service uses: PREFECT_API_URL when set, else one local server it starts.

Prefect's ephemeral mode would start a private server in every process (the API and each worker),
all on one sqlite file; one real server on loopback serves them all, and its UI shows the jobs.
Production points PREFECT_API_URL at a server on PostgreSQL (sqlite collapses at ~8 concurrent
runs: p95 6.6 s against 1.6 s measured here).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PrefectServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """In the child: the kernel sends it `sig` when its parent ends, however that ends (uvicorn
    re-raises the SIGTERM it caught after its shutdown, so no `finally` in the parent runs)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG


# How the Prefect server behind the service records task runs: its recorder writes each task-run
# event in a transaction of its own by default (batch size 1), ~15 a job; in batches of up to 100,
# flushed every second, its CPU per job fell from 0.33-0.36 to 0.20-0.24 s (bench/api.py, 2 cores).
# The cost: a stage shows in the UI (and in a job's `stage`) up to a second late. The embedded
# server, the bench's, the test servers and the compose stack all run with these.
SERVER_ENV = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",  # whole seconds: Prefect int()s it
}
RECORDER_FLUSH_S = float(SERVER_ENV["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"])  # what tests wait on

SERVER_NICE = 10  # the embedded server's bookkeeping yields the cores to the models beside it


def _server_child() -> None:
    """In the embedded server's process before it starts: it ends with its parent, and runs at a
    lower CPU priority than the workers. Its task-run recording (~45 ms of CPU a task run, measured
    here) otherwise takes cores from the models in flight on a small machine; at nice 10 it catches
    up between model stages instead (measured on 2 cores: -80 to -110 ms median per job)."""
    die_with_parent()
    os.nice(SERVER_NICE)


def _prefect_exe() -> str:
    beside = Path(sys.executable).with_name("prefect")
    return str(beside) if beside.exists() else (shutil.which("prefect") or "prefect")


@contextmanager
def prefect_api(port: int | None = None, timeout_s: float = 120.0, log_path: Path | None = None) -> Iterator[str]:
    """Yield the Prefect API URL this process and its children use (set into the environment)."""
    # Prefect's client retries a refused connection 5 times with a doubling pause (~60 s); the service
    # answers a request sooner than that, and its workers poll again anyway
    os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "2")
    url = os.environ.get("PREFECT_API_URL")
    if url:
        yield url
        return
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = SERVER_ENV | dict(os.environ)  # an operator's own setting wins
    proc = subprocess.Popen([_prefect_exe(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],  # noqa: S603
                            env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_server_child)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise PrefectServerError(f"the local Prefect server exited with {proc.returncode}"
                                         + (f"; see {log_path}" if log_path else ""))  # fmt: skip
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):  # noqa: S310 - our own http://127.0.0.1
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise PrefectServerError(f"the local Prefect server did not answer within {timeout_s:.0f} s; "
                                             "set PREFECT_API_URL to a running one") from None  # fmt: skip
                time.sleep(0.3)
        os.environ["PREFECT_API_URL"] = url  # before Prefect is imported here; the workers inherit it
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()
        os.environ.pop("PREFECT_API_URL", None)
