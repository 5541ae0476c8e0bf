"""Where models run: CUDA when the machine has it, else the CPU; and whose turn it is."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_TURN = threading.Lock()
_LOCK_FILES: dict[str, int] = {}


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


@contextlib.contextmanager
def model_turn() -> Iterator[None]:
    """Run a model stage alone on this machine when several worker processes share it
    (`DIMFLOW_COMPUTE_LOCK`, a lock file the service's supervisor names): one stage at a time gets
    every core, while the other workers' loading, merging and bookkeeping go on beside it. Measured
    on 2 cores, two jobs' models at once cost each ~40% more CPU than one after the other. The lock
    is the kernel's (flock), so a worker killed in a stage cannot leave it held."""
    import fcntl
    import os

    from dimflow.settings import get_settings

    path = get_settings().compute_lock
    if path is None:
        yield
        return
    with _TURN:  # the threads of one process take turns too (flock is per open file, not per thread)
        fd = _LOCK_FILES.get(str(path))
        if fd is None:
            fd = _LOCK_FILES[str(path)] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
