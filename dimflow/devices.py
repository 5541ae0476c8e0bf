"""Where models run: CUDA when the machine has it, else the CPU; and whose turn it is."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import threading
import time
from collections.abc import Iterator

_TURN = threading.Lock()
_LOCK_FILES: dict[str, int] = {}
_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("dimflow_thread_budget", default=None)


def pick_device() -> str:
    """torch's device string: "cuda" when a GPU is visible, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def ultralytics_device() -> str:
    """The same choice in ultralytics' spelling (GPU index or "cpu")."""
    return "0" if pick_device() == "cuda" else "cpu"


def onnx_providers() -> list[str]:
    """onnxruntime's providers, CUDA first where the installed build has it (onnxruntime-gpu)."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have] or ["CPUExecutionProvider"]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def budgets() -> list[int]:
    """Every thread budget `model_turn` may hand out on this machine (a worker makes its model
    sessions for each before its first job); none when the cores are not shared."""
    from dimflow.settings import get_settings

    s = get_settings()
    if s.compute_lock is None or s.compute_share != "threads":
        return []
    return sorted({max(1, _cores() // n) for n in range(1, _cores() + 1)})


def thread_budget() -> int | None:
    """The threads the model stage running in this context may use (None: the libraries' default)."""
    return _BUDGET.get()


@contextlib.contextmanager
def model_turn() -> Iterator[int | None]:
    """A model stage of a worker process that shares this machine with others (the service's
    supervisor names a lock file, `DIMFLOW_COMPUTE_LOCK`), sharing the cores as
    `DIMFLOW_COMPUTE_SHARE` says:

    - "threads" (default): stages run side by side, each with the cores divided by the stages
      running (one stage alone gets every core). Measured on 2 cores, an A4 drawing's models take
      1.70 CPU-s on 2 threads (1.0 s) and 1.51 CPU-s on one: two jobs on one thread each get more
      done than one after the other on two, and a job alone is as fast as in-process.
    - "turns": one stage at a time gets every core (a flock the others wait on), for a device two
      models should not share.

    Either way the kernel holds the locks (flock), so a worker killed in a stage holds nothing.
    Yields the thread budget, also readable as `thread_budget()` by the models."""
    from dimflow.settings import get_settings

    s = get_settings()
    if s.compute_lock is None:
        yield None
        return
    with _TURN:  # the threads of one process take turns (flock is per open file, and torch's threads per process)
        if s.compute_share == "turns":
            fd = _lock_fd(str(s.compute_lock))
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield None
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        cores = _cores()
        fd, running = _take_core_slot(str(s.compute_lock), cores)
        budget = max(1, cores // running)
        token = _BUDGET.set(budget)
        _set_library_threads(budget)
        try:
            yield budget
        finally:
            _BUDGET.reset(token)
            fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_fd(path: str) -> int:
    fd = _LOCK_FILES.get(path)
    if fd is None:
        fd = _LOCK_FILES[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return fd


def _take_core_slot(path: str, cores: int) -> tuple[int, int]:
    """One of `cores` slot files (waiting while all are held: more workers than cores), and how
    many stages hold one now, this one included."""
    fds = [_lock_fd(f"{path}.{k}") for k in range(cores)]
    while True:
        for k, fd in enumerate(fds):
            if _try(fd):
                others = 0
                for j, other in enumerate(fds):
                    if j != k and not _try(other, release=True):
                        others += 1
                return fd, 1 + others
        time.sleep(0.02)


def _try(fd: int, release: bool = False) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    if release:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def _set_library_threads(n: int) -> None:
    import cv2
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    cv2.setNumThreads(n)
