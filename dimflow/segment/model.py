"""The stroke segmenter: GraphSAGE over the stroke graph, one class per stroke."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import SAGEConv

from dimflow.segment.vectorize import CLASSES, N_FEATURES, StrokeGraph

WEIGHTS = "segmenter.pt"
CONFIG = "segmenter.json"


@dataclass
class SegmenterConfig:
    in_dim: int = N_FEATURES
    hidden: int = 96
    layers: int = 4
    dropout: float = 0.1
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    feature_mean: list[float] = field(default_factory=lambda: [0.0] * N_FEATURES)
    feature_std: list[float] = field(default_factory=lambda: [1.0] * N_FEATURES)


class StrokeSAGE(nn.Module):
    """Input projection, residual SAGE layers (mean aggregation), per-stroke classifier."""

    def __init__(self, cfg: SegmenterConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(cfg.feature_mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(cfg.feature_std, dtype=torch.float32))
        self.inp = nn.Sequential(nn.Linear(cfg.in_dim, cfg.hidden), nn.ReLU())
        self.convs = nn.ModuleList(SAGEConv(cfg.hidden, cfg.hidden) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden) for _ in range(cfg.layers))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden * 2, len(cfg.classes))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        h0 = self.inp((x - self.mean) / self.std)
        h = h0
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = h + self.drop(torch.relu(norm(conv(h, edge_index))))
        return self.head(torch.cat([h, h0], dim=1))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / WEIGHTS)
        (folder / CONFIG).write_text(json.dumps(asdict(self.cfg), indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> StrokeSAGE:
        cfg = SegmenterConfig(**json.loads((folder / CONFIG).read_text()))
        model = cls(cfg)
        model.load_state_dict(torch.load(folder / WEIGHTS, map_location=device, weights_only=True))
        return model.to(device).eval()

    @torch.no_grad()
    def predict(self, g: StrokeGraph) -> tuple[np.ndarray, np.ndarray]:
        """Class index and probability per stroke."""
        if g.n == 0:
            return np.zeros(0, np.int64), np.zeros((0, len(self.cfg.classes)), np.float32)
        dev = self.mean.device
        logits = self(torch.from_numpy(g.features).to(dev), torch.from_numpy(g.edges).to(dev))
        prob = logits.softmax(dim=1).cpu().numpy()
        return prob.argmax(axis=1), prob
