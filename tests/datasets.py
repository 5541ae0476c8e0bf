"""Small synthetic splits for the training tests."""

from __future__ import annotations

from pathlib import Path

from dimflow.synth.dataset import write_dataset


def write_splits(root: Path, **splits: tuple[int, int]) -> Path:
    """Splits under `root` (split name -> (drawings, seed)); returns `root`."""
    for name, (n, seed) in splits.items():
        write_dataset(root / name, n=n, seed=seed)
    return root
