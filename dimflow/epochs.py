"""What every epoch loop does once an epoch ends: record it, report it, keep the best weights,
and checkpoint it, so that an interrupted training resumes where it stopped."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


class EpochBook:
    """History, live reporting (MLflow through `on_epoch`, a progress bar) and the weights of the
    epoch with the best validation score, restored when training ends."""

    def __init__(
        self,
        model: torch.nn.Module,
        epochs: int,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        checkpoint: Path | None = None,
        state: dict[str, Any] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.model, self.epochs, self.on_epoch, self.progress = model, epochs, on_epoch, progress
        self.history: list[dict[str, float]] = []
        self.best, self.best_state = -1.0, None
        # with a checkpoint file: also the optimizer and scheduler (`state`) and the data order's rng
        self.checkpoint, self.state, self.rng = checkpoint, state or {}, rng

    def resume(self) -> int:
        """The epoch to start from: 0, or the one after the checkpoint's, with the model, optimizer,
        scheduler, random streams, history and best weights as they were then (the history is
        reported again, so a new MLflow run holds all of it)."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return 0
        ck = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        self.model.load_state_dict(ck["model"])
        for name, obj in self.state.items():
            obj.load_state_dict(ck[name])
        if self.rng is not None:
            self.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        self.history, self.best, self.best_state = ck["history"], ck["best"], ck["best_state"]
        for epoch, row in enumerate(self.history):
            if self.on_epoch:
                self.on_epoch(epoch, row)
        log.info("resuming from %s after epoch %d", self.checkpoint, len(self.history))
        return len(self.history)

    def _save(self) -> None:
        ck = {"model": self.model.state_dict(), "history": self.history, "best": self.best,
              "best_state": self.best_state, "torch_rng": torch.get_rng_state(),
              "rng": self.rng.bit_generator.state if self.rng is not None else None,
              **{name: obj.state_dict() for name, obj in self.state.items()}}  # fmt: skip
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(ck, tmp)
        os.replace(tmp, self.checkpoint)  # a kill mid-write leaves the previous checkpoint whole

    def end(self, epoch: int, row: dict[str, float], score: float, message: str) -> None:
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch(epoch, row)
        if score > self.best:
            self.best = score
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        log.info("epoch %d/%d: %s", epoch + 1, self.epochs, row)
        if self.checkpoint is not None:
            self._save()
        if self.progress:
            self.progress(f"epoch {epoch + 1}: {message}", epoch + 1, self.epochs)

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
