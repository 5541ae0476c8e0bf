"""Train and evaluate the stroke segmenter on synthetic drawings' pixel labels."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dimflow.devices import pick_device
from dimflow.epochs import EpochBook
from dimflow.segment.model import SegmenterConfig, StrokeSAGE
from dimflow.segment.vectorize import CLASSES, StrokeGraph, build_graph, label_strokes
from dimflow.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class SegmenterParams:
    epochs: int = 40
    lr: float = 3e-3
    weight_decay: float = 1e-4
    hidden: int = 96
    layers: int = 4
    dropout: float = 0.1
    max_train: int | None = 200
    max_val: int | None = 30
    seed: int = 0
    workers: int = 2
    init: str | None = None  # folder of a segmenter to fine-tune from (e.g. the champion's); keeps its shape


def _cache_path(image: Path) -> Path:
    digest = hashlib.sha256(image.read_bytes()).hexdigest()[:24]
    return get_settings().data_dir / "cache" / "stroke-graphs" / f"{digest}.npz"


def graph_for(image: Path, seg_png: Path | None = None) -> StrokeGraph:
    """The labelled stroke graph of one synthetic drawing, cached by image content."""
    cache = _cache_path(image)
    if cache.is_file():
        z = np.load(cache)
        return StrokeGraph(z["segments"], z["features"], z["edges"], z["labels"], float(z["line_width"]), z["offset"])
    gray = np.asarray(Image.open(image).convert("L"))
    g = build_graph(gray)
    if seg_png is not None:
        g.labels = label_strokes(g, np.asarray(Image.open(seg_png)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        segments=g.segments,
        features=g.features,
        edges=g.edges,
        labels=g.labels if g.labels is not None else np.full(g.n, -1),
        line_width=g.line_width,
        offset=g.ink_offset,
    )
    tmp.replace(cache)
    return g


def _graph_job(args: tuple[str, str]) -> StrokeGraph:
    return graph_for(Path(args[0]), Path(args[1]))


def load_split(
    split: Path, limit: int | None = None, workers: int = 2, progress: Callable[[int], None] | None = None
) -> list[StrokeGraph]:
    images = sorted((split / "images").glob("*.png"))[:limit]
    jobs = [(str(p), str(split / "segmentation" / p.name)) for p in images]
    graphs = []
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for g in pool.map(_graph_job, jobs):
                graphs.append(g)
                if progress:
                    progress(1)
    else:
        for j in jobs:
            graphs.append(_graph_job(j))
            if progress:
                progress(1)
    return graphs


def evaluate(model: StrokeSAGE, graphs: list[StrokeGraph]) -> dict:
    """Stroke accuracy over the four classes, per-class recall and the confusion matrix."""
    k = len(CLASSES)
    conf = np.zeros((k, k), np.int64)
    for g in graphs:
        pred, _ = model.predict(g)
        ok = g.labels >= 0
        np.add.at(conf, (g.labels[ok], pred[ok]), 1)
    total = conf.sum()
    out = {"accuracy": float(np.trace(conf) / total) if total else 0.0, "n_strokes": int(total)}
    for i, name in enumerate(CLASSES):
        row = conf[i].sum()
        out[f"recall_{name}"] = float(conf[i, i] / row) if row else 0.0
    out["confusion"] = conf.tolist()
    return out


def train(
    data_root: Path,
    params: SegmenterParams,
    progress: Callable[[str, int, int], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: Path | None = None,
) -> tuple[StrokeSAGE, dict]:
    """Train on `data_root`/train, select on `data_root`/val; returns the model and its metrics.
    With `checkpoint`, every epoch is saved there and a training interrupted with the same
    arguments resumes after its last saved epoch."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    device = pick_device()
    train_g = load_split(data_root / "train", params.max_train, params.workers)
    val_g = load_split(data_root / "val", params.max_val, params.workers)
    feats = np.concatenate([g.features for g in train_g])
    cfg = SegmenterConfig(
        hidden=params.hidden,
        layers=params.layers,
        dropout=params.dropout,
        feature_mean=feats.mean(0).tolist(),
        feature_std=(feats.std(0) + 1e-6).tolist(),
    )
    if params.init:  # fine-tuning: the given model's architecture and feature scaling, trained further
        model = StrokeSAGE.load(Path(params.init), device).train()
        log.info("fine-tuning the segmenter from %s", params.init)
    else:
        model = StrokeSAGE(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=params.epochs * len(train_g))
    tensors = [
        (
            torch.from_numpy(g.features).to(device),
            torch.from_numpy(g.edges).to(device),
            torch.from_numpy(g.labels).to(device),
        )
        for g in train_g
        if g.n
    ]
    book = EpochBook(model, params.epochs, on_epoch, progress, checkpoint, {"opt": opt, "sched": sched}, rng)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
    for epoch in range(book.resume(), params.epochs):
        model.train()
        t0, total = time.perf_counter(), 0.0
        for i in rng.permutation(len(tensors)):
            x, e, y = tensors[i]
            opt.zero_grad()
            loss = loss_fn(model(x, e), y)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        model.eval()
        val = evaluate(model, val_g)
        row = {
            "loss": total / max(1, len(tensors)),
            "val_accuracy": val["accuracy"],
            "epoch_seconds": time.perf_counter() - t0,
        }
        book.end(epoch, row, val["accuracy"], f"loss {row['loss']:.3f} val acc {val['accuracy']:.4f}")
    book.restore_best()
    model.eval()
    final = evaluate(model, val_g)
    metrics = {
        "history": book.history,
        "val": final,
        "params": asdict(params),
        "device": device,
        "n_train_drawings": len(train_g),
        "n_val_drawings": len(val_g),
    }
    return model.cpu(), metrics
