"""Train and evaluate the callout reader on synthetic callout crops."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from dimflow.devices import pick_device
from dimflow.epochs import EpochBook
from dimflow.grammar import GrammarError, normalise
from dimflow.read.model import CRNN, ReaderConfig, to_input, unstack
from dimflow.read.orient import Orientation, train_orientation

log = logging.getLogger(__name__)


@dataclass
class ReaderParams:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_train: int | None = None
    max_val: int | None = 400
    seed: int = 0
    augment: bool = True
    orient_epochs: int = 8
    init: str | None = None  # folder of a reader to fine-tune from (e.g. the champion's)
    # more splits under the data root whose crops join train / val: CAD-style sheets (`cad_train`,
    # `cad_val`), so the reader learns their lettering and inks and is chosen on both looks
    extra_train: list[str] = field(default_factory=list)
    extra_val: list[str] = field(default_factory=list)


@dataclass
class Sample:
    image: np.ndarray  # upright grayscale crop, stacks laid out on one line (what the CRNN trains on)
    text: str  # the contract's normalised text
    raw: np.ndarray  # the crop as cut from the drawing (what inference gets)
    upright: np.ndarray  # the crop turned upright, stacks as drawn (what the orientation net learns)


def load_crops(split: Path, limit: int | None = None) -> list[Sample]:
    """Dimension crops of a split: upright (by the rotation the generator recorded) for training,
    and as cut, for evaluation through the same path inference takes."""
    rows = [json.loads(line) for line in (split / "crops" / "index.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["kind"] == "dimension"][:limit]
    out = []
    for r in rows:
        raw = np.asarray(Image.open(split / "crops" / r["crop"]).convert("L"))
        gray = np.rot90(raw, k=-1).copy() if r["rotation"] == 90 else raw
        out.append(Sample(unstack(gray), r["text"], raw, gray))
    return out


def training_crops(data_root: Path, params: ReaderParams) -> list[Sample]:
    """The crops a reader trains on: `train`'s, then each extra split's (`max_train` at most from
    each). A named split that is missing is an error, not a smaller training set."""
    return _crops_of(data_root, ["train", *params.extra_train], params.max_train)


def validation_crops(data_root: Path, params: ReaderParams) -> list[Sample]:
    """The crops epochs are chosen on: `val`'s, then each extra validation split's (`max_val` from each)."""
    return _crops_of(data_root, ["val", *params.extra_val], params.max_val)


def missing_crops(data_root: Path, splits: list[str]) -> list[Path]:
    """The named splits under `data_root` that hold no crops index."""
    return [data_root / s for s in splits if not (data_root / s / "crops" / "index.jsonl").is_file()]


def _crops_of(data_root: Path, splits: list[str], limit: int | None) -> list[Sample]:
    if missing := missing_crops(data_root, splits):
        raise FileNotFoundError(
            f"{missing[0]} has no crops/index.jsonl; `dvc repro` makes the splits params.yaml names"
        )
    return [c for split in splits for c in load_crops(data_root / split, limit)]


def augment(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanner-like variation: scale, stroke weight, blur, noise, a small skew, padding."""
    img = gray
    if rng.random() < 0.5:
        f = rng.uniform(0.6, 1.3)
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        k = np.ones((2, 2), np.uint8)
        img = cv2.erode(img, k) if rng.random() < 0.5 else cv2.dilate(img, k)
    if rng.random() < 0.3:
        h, w = img.shape
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-1.5, 1.5), 1.0)
        img = cv2.warpAffine(img, m, (w, h), borderValue=255)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        img = np.clip(img + rng.normal(0, rng.uniform(3, 15), img.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        top, bottom, left, right = (int(v) for v in rng.integers(0, 6, 4))
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=255)
    return img


def canonical(raw: str) -> str:
    """What the reader's raw text means in the contract's normalised form (raw if unparsable)."""
    try:
        return normalise(raw)
    except GrammarError:
        return raw.strip()


def evaluate(model: CRNN, samples: list[Sample]) -> dict:
    """Exact match of the normalised reading against the truth text."""
    model.eval()
    texts = [t for t, _ in model.read([s.raw for s in samples])]
    hits = [canonical(t) == s.text for t, s in zip(texts, samples, strict=True)]
    stacked = [h for h, s in zip(hits, samples, strict=True) if "/" in s.text]
    errors = [(s.text, t) for t, s, h in zip(texts, samples, hits, strict=True) if not h]
    return {
        "exact_match": float(np.mean(hits)) if hits else 0.0,
        "exact_match_stacked": float(np.mean(stacked)) if stacked else 0.0,
        "n_crops": len(samples),
        "errors": errors[:25],
    }


def orientation_accuracy(model: CRNN, samples: list[Sample]) -> float:
    """Share of crops whose most likely orientation is the true one (raw crops as cut)."""
    if model.orient is None or not samples:
        return 0.0
    probs = model.orient.predict([s.raw for s in samples])
    truth = [0 if s.raw.shape == s.upright.shape and np.array_equal(s.raw, s.upright) else 1 for s in samples]
    return float(np.mean(probs.argmax(1) == np.array(truth)))


def train(
    data_root: Path,
    params: ReaderParams,
    progress: Callable[[str, int, int], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: Path | None = None,
) -> tuple[CRNN, dict]:
    """Train on `data_root`/train crops, select on `data_root`/val; returns the model and metrics.
    With `checkpoint`, every epoch is saved there and a training interrupted with the same
    arguments resumes after its last saved epoch (its orientation net included)."""
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    device = pick_device()
    train_s = training_crops(data_root, params)
    val_s = validation_crops(data_root, params)
    if params.init:
        model = CRNN.load(Path(params.init), device)
        cfg = model.cfg
        log.info("fine-tuning the reader from %s", params.init)
    else:
        cfg = ReaderConfig()
        model = CRNN(cfg).to(device)
    if checkpoint is not None and checkpoint.is_file():  # resuming: the orientation net is in the checkpoint
        if model.orient is None:
            model.orient = Orientation().to(device)
        orient_history = []
    elif params.orient_epochs or model.orient is None:
        model.orient, orient_history = train_orientation(
            [s.upright for s in train_s], max(1, params.orient_epochs), rng, device
        )
        log.info("orientation net: loss per epoch %s", orient_history)
    else:
        orient_history = []  # keep the orientation net of --init
    model.orient.requires_grad_(False)
    crnn_params = [p for n, p in model.named_parameters() if not n.startswith("orient.")]
    opt = torch.optim.AdamW(crnn_params, lr=params.lr, weight_decay=params.weight_decay)
    steps = max(1, params.epochs * ((len(train_s) + params.batch_size - 1) // params.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=steps, pct_start=0.15)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    book = EpochBook(model, params.epochs, on_epoch, progress, checkpoint, {"opt": opt, "sched": sched}, rng)
    for epoch in range(book.resume(), params.epochs):
        model.train()
        model.orient.eval()
        t0, total, n = time.perf_counter(), 0.0, 0
        order = rng.permutation(len(train_s))
        # similar widths together: less padding, faster CPU steps
        chunks = [order[i : i + params.batch_size * 8] for i in range(0, len(order), params.batch_size * 8)]
        for chunk in chunks:
            imgs = [augment(train_s[i].image, rng) if params.augment else train_s[i].image for i in chunk]
            inputs = [to_input(im, cfg) for im in imgs]
            by_w = np.argsort([x.shape[1] for x in inputs])
            for s in range(0, len(by_w), params.batch_size):
                sel = by_w[s : s + params.batch_size]
                xs = [inputs[i] for i in sel]
                texts = [train_s[chunk[i]].text for i in sel]
                widths = torch.tensor([x.shape[1] for x in xs])
                x = torch.zeros(len(xs), 1, cfg.height, int(widths.max()))
                for j, im in enumerate(xs):
                    x[j, 0, :, : im.shape[1]] = torch.from_numpy(im)
                targets = [model.encode(t) for t in texts]
                logp = model(x.to(device))
                in_len = torch.clamp(widths // 4, max=logp.shape[0])
                loss = ctc(
                    logp, torch.tensor([c for t in targets for c in t]), in_len, torch.tensor([len(t) for t in targets])
                )
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(sel)
                n += len(sel)
        val = evaluate(model, val_s)
        row = {
            "loss": total / max(n, 1),
            "val_exact_match": val["exact_match"],
            "val_exact_match_stacked": val["exact_match_stacked"],
            "epoch_seconds": time.perf_counter() - t0,
        }
        message = f"loss {row['loss']:.3f} val exact {val['exact_match']:.4f} stacked {val['exact_match_stacked']:.3f}"
        book.end(epoch, row, val["exact_match"], message)
    book.restore_best()
    final = evaluate(model, val_s)
    final["orientation_accuracy"] = orientation_accuracy(model, val_s)
    metrics = {
        "orientation_loss": orient_history,
        "history": book.history,
        "val": final,
        "params": asdict(params),
        "device": device,
        "n_train_crops": len(train_s),
        "n_val_crops": len(val_s),
    }
    return model.cpu().eval(), metrics


__all__ = ["ReaderParams", "evaluate", "load_crops", "missing_crops", "train", "training_crops", "validation_crops"]
