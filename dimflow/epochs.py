"""What every epoch loop does once an epoch ends: record it, report it, keep the best weights."""

from __future__ import annotations

import logging
from collections.abc import Callable

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
    ) -> None:
        self.model, self.epochs, self.on_epoch, self.progress = model, epochs, on_epoch, progress
        self.history: list[dict[str, float]] = []
        self.best, self.best_state = -1.0, None

    def end(self, epoch: int, row: dict[str, float], score: float, message: str) -> None:
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch(epoch, row)
        if score > self.best:
            self.best = score
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        log.info("epoch %d/%d: %s", epoch + 1, self.epochs, row)
        if self.progress:
            self.progress(f"epoch {epoch + 1}: {message}", epoch + 1, self.epochs)

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
