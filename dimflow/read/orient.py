"""Which way a callout crop reads: upright, turned 90° (vertical dimension), 180° or 270°.

Aspect ratio cannot tell (a vertical `65` is nearly square) and a CRNN's confidence picks the
wrong way for short strings, so a small CNN decides. It trains on every crop at all four
quarter turns of its upright view, which the generator's rotation label gives exactly.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

SIZE = 64
# class k: the crop is its upright text turned k quarter turns counter-clockwise


def to_square(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Fit a crop into a size x size square (aspect kept, paper padding), ink bright."""
    h, w = gray.shape[:2]
    s = size / max(h, w)
    img = cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    out = np.full((size, size), 255, np.uint8)
    y, x = (size - img.shape[0]) // 2, (size - img.shape[1]) // 2
    out[y : y + img.shape[0], x : x + img.shape[1]] = img
    return 1.0 - out.astype(np.float32) / 255.0


class Orientation(nn.Module):
    def __init__(self) -> None:
        super().__init__()

        def block(i: int, o: int) -> list[nn.Module]:
            # GroupNorm, not BatchNorm: BatchNorm's running statistics read quarter turns wrongly in eval mode
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.GroupNorm(8, o), nn.ReLU(True), nn.MaxPool2d(2)]

        self.net = nn.Sequential(
            *block(1, 16),
            *block(16, 32),
            *block(32, 64),
            *block(64, 96),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(96, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @torch.no_grad()
    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 4) probabilities that each crop is its upright text turned k quarter turns."""
        if not crops:
            return np.zeros((0, 4), np.float32)
        dev = next(self.parameters()).device
        x = torch.from_numpy(np.stack([to_square(c) for c in crops])[:, None]).to(dev)
        return self(x).softmax(1).cpu().numpy()


def upright_views(crop: np.ndarray, prob: np.ndarray, keep: float = 0.15) -> list[np.ndarray]:
    """The crop turned upright by each orientation at least `keep` likely, most likely first."""
    order = np.argsort(prob)[::-1]
    return [np.rot90(crop, k=-int(k)).copy() for k in order if k == order[0] or prob[k] >= keep]


def train_orientation(
    uprights: list[np.ndarray], epochs: int, rng: np.random.Generator, device: str = "cpu"
) -> tuple[Orientation, list[float]]:
    """Fit the orientation net on upright crops shown at all four quarter turns."""
    model = Orientation().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    xs = {k: np.stack([to_square(np.rot90(u, k=k)) for u in uprights]) for k in range(4)}
    history = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        order = rng.permutation(len(uprights) * 4)
        for s in range(0, len(order), 64):
            idx = order[s : s + 64]
            x = np.stack([xs[int(i % 4)][int(i // 4)] for i in idx])[:, None]
            y = torch.tensor([int(i % 4) for i in idx], device=device)
            opt.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x).to(device)), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(order))
    return model.eval(), history
