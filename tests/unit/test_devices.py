"""How a machine's worker processes share its cores in model stages (`devices.model_turn`)."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from dimflow import devices
from dimflow.settings import get_settings


@pytest.fixture
def share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def set_mode(mode: str) -> Path:
        lock = tmp_path / "compute.lock"
        monkeypatch.setenv("DIMFLOW_COMPUTE_LOCK", str(lock))
        monkeypatch.setenv("DIMFLOW_COMPUTE_SHARE", mode)
        get_settings.cache_clear()
        return lock

    threads = torch.get_num_threads()
    yield set_mode
    get_settings.cache_clear()
    torch.set_num_threads(threads)


CORES = len(os.sched_getaffinity(0))


def test_without_a_lock_the_libraries_keep_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIMFLOW_COMPUTE_LOCK", raising=False)
    get_settings.cache_clear()
    with devices.model_turn() as budget:
        assert budget is None and devices.thread_budget() is None


def test_a_stage_alone_gets_every_core(share) -> None:
    share("threads")
    with devices.model_turn() as budget:
        assert budget == CORES == devices.thread_budget() == torch.get_num_threads()
    assert devices.thread_budget() is None


@pytest.mark.skipif(CORES < 2, reason="dividing cores needs two")
def test_stages_side_by_side_divide_the_cores(share) -> None:
    lock = share("threads")
    other = os.open(f"{lock}.0", os.O_RDWR | os.O_CREAT, 0o600)  # another worker's stage holds a slot
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with devices.model_turn() as budget:
            assert budget == CORES // 2 == torch.get_num_threads()
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    with devices.model_turn() as budget:  # the other one ended
        assert budget == CORES


def _hold(lock: str, mode: str, ready, release) -> None:
    os.environ.update(DIMFLOW_COMPUTE_LOCK=lock, DIMFLOW_COMPUTE_SHARE=mode)
    with devices.model_turn():
        ready.set()
        release.wait(30)


def _stage_elsewhere(lock: Path, mode: str):
    """Another worker process inside a model stage until `release` is set (or it is killed)."""
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_hold, args=(str(lock), mode, ready, release))
    p.start()
    assert ready.wait(60)
    return p, release


def test_a_killed_worker_holds_no_slot(share) -> None:
    p, _ = _stage_elsewhere(share("threads"), "threads")
    with devices.model_turn() as budget:
        assert budget == max(1, CORES // 2)
    p.kill()  # killed inside its stage: the kernel drops its flock
    p.join(10)
    with devices.model_turn() as budget:
        assert budget == CORES


def test_turns_mode_runs_one_stage_at_a_time(share) -> None:
    p, release = _stage_elsewhere(share("turns"), "turns")
    try:
        t = time.monotonic()
        threading.Timer(0.5, release.set).start()  # the other stage ends in 0.5 s
        with devices.model_turn() as budget:  # waits for the other's turn to end
            assert budget is None
            assert time.monotonic() - t >= 0.4
    finally:
        release.set()
        p.join(10)


def test_budgets_are_what_a_worker_prepares_sessions_for(share, monkeypatch: pytest.MonkeyPatch) -> None:
    share("threads")
    assert devices.budgets() == sorted({max(1, CORES // n) for n in range(1, CORES + 1)})
    assert devices.budgets()[-1] == CORES and devices.budgets()[0] == 1
    share("turns")
    assert devices.budgets() == []
