"""Where models run: CUDA when the machine has it, else the CPU."""

from __future__ import annotations


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
