"""Small synthetic splits and deliberately bad models for the training and lifecycle tests."""

from __future__ import annotations

from pathlib import Path

from dimflow.synth.dataset import write_dataset


def write_splits(root: Path, **splits: tuple[int, int]) -> Path:
    """Splits under `root` (split name -> (drawings, seed)); returns `root`."""
    for name, (n, seed) in splits.items():
        write_dataset(root / name, n=n, seed=seed)
    return root


def scrambled_segmenter(folder: Path) -> Path:
    """The shipped segmenter with its weights replaced by noise, saved to `folder`: a model any training beats."""
    import torch

    from dimflow.segment.model import StrokeSAGE

    model = StrokeSAGE.load(Path(__file__).resolve().parents[1] / "models" / "baseline" / "segmenter")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    model.save(folder)
    return folder
