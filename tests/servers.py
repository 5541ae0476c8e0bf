"""Servers the integration tests start on loopback: a free port, waiting until one answers, stopping it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest


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
