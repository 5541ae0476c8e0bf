"""Train the callout detector (YOLO11n from its yaml, no pretrained weights) and evaluate it on
whole drawings. Training resumes from its last checkpoint when it is interrupted."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2

from dimflow.compute import ultralytics_device
from dimflow.detect.model import CLASSES, CONFIG, ONNX, WEIGHTS, Box, Detector, DetectorConfig
from dimflow.detect.yolo_env import offline
from dimflow.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class DetectorParams:
    epochs: int = 15
    imgsz: int = 1600
    batch: int = 4
    max_train: int | None = 120
    max_val: int | None = 20
    lr0: float = 0.01
    mosaic: float = 1.0
    workers: int = 2
    seed: int = 0
    patience: int = 50
    resume: bool = True
    finish_only: bool = False  # export and evaluate an interrupted run's best checkpoint as it is


def prepare(split: Path, out: Path, name: str, imgsz: int, limit: int | None) -> int:
    """Copy a split's drawings, long side scaled to imgsz, with their YOLO labels."""
    images = sorted((split / "images").glob("*.png"))[:limit]
    (out / "images" / name).mkdir(parents=True, exist_ok=True)
    (out / "labels" / name).mkdir(parents=True, exist_ok=True)
    for p in images:
        dst = out / "images" / name / p.name
        if not dst.is_file():
            gray = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            s = imgsz / max(gray.shape)
            small = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else gray
            cv2.imwrite(str(dst), small)
        shutil.copy(split / "labels" / f"{p.stem}.txt", out / "labels" / name / f"{p.stem}.txt")
    return len(images)


def _dataset_dir(data_root: Path, params: DetectorParams) -> Path:
    key = hashlib.sha256(f"{data_root.resolve()}|{params.imgsz}|{params.max_train}|{params.max_val}".encode())
    return get_settings().data_dir.resolve() / "cache" / "detector" / key.hexdigest()[:16]


def train(
    data_root: Path,
    params: DetectorParams,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Detector, dict]:
    """Train on `data_root`/train, validate on `data_root`/val; export ONNX; returns model and metrics."""
    offline()
    from ultralytics import YOLO

    ds = _dataset_dir(data_root, params)
    n_train = prepare(data_root / "train", ds, "train", params.imgsz, params.max_train)
    n_val = prepare(data_root / "val", ds, "val", params.imgsz, params.max_val)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES))
    (ds / "data.yaml").write_text(f"path: {ds}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    runs = ds / "runs"
    last = runs / "train" / "weights" / "last.pt"
    device = ultralytics_device()
    if params.finish_only:
        if not (runs / "train" / "weights" / "best.pt").is_file():
            raise FileNotFoundError(f"no detector checkpoint under {runs}; train first")
        log.info("exporting the interrupted run's best checkpoint without more training")
    elif params.resume and last.is_file():
        log.info("resuming detector training from %s", last)
        model = YOLO(str(last))
        model.train(resume=True)
    else:
        model = YOLO("yolo11n.yaml")
        if progress:

            def on_epoch(trainer) -> None:
                progress(f"epoch {trainer.epoch + 1}", trainer.epoch + 1, trainer.epochs)

            model.add_callback("on_fit_epoch_end", on_epoch)
        model.train(
            data=str(ds / "data.yaml"),
            epochs=params.epochs,
            imgsz=params.imgsz,
            batch=params.batch,
            device=device,
            workers=params.workers,
            project=str(runs),
            name="train",
            exist_ok=True,
            pretrained=False,
            amp=False,
            plots=False,
            seed=params.seed,
            lr0=params.lr0,
            mosaic=params.mosaic,
            patience=params.patience,
            fliplr=0.0,
            verbose=False,
            save_period=1,
        )
    best = runs / "train" / "weights" / "best.pt"
    out = ds / "export"
    out.mkdir(exist_ok=True)
    shutil.copy(best, out / WEIGHTS)
    onnx_path = YOLO(str(best)).export(
        format="onnx", imgsz=params.imgsz, dynamic=True, simplify=False, opset=17, device="cpu"
    )
    shutil.copy(onnx_path, out / ONNX)
    cfg = DetectorConfig(imgsz=params.imgsz)
    (out / CONFIG).write_text(json.dumps(asdict(cfg), indent=1) + "\n")
    detector = Detector.load(out)
    history = _history(runs / "train" / "results.csv")
    val = evaluate(detector, data_root / "val", params.max_val)
    metrics = {
        "history": history,
        "val": val,
        "params": asdict(params),
        "device": device,
        "n_train_drawings": n_train,
        "n_val_drawings": n_val,
    }
    return detector, metrics


def _history(csv: Path) -> list[dict[str, float]]:
    if not csv.is_file():
        return []
    lines = csv.read_text().strip().splitlines()
    head = [h.strip() for h in lines[0].split(",")]
    rows = []
    for line in lines[1:]:
        vals = [v.strip() for v in line.split(",")]
        rows.append(
            {k.replace("/", "_").replace("(B)", ""): float(v) for k, v in zip(head, vals, strict=False) if k != "epoch"}
        )
    return rows


def match_boxes(pred: list[Box], truth: list[tuple[float, float, float, float]], iou: float = 0.5) -> int:
    """Greedy one-to-one matches of predicted dimension boxes to truth boxes at IoU >= iou."""
    used: set[int] = set()
    hits = 0
    for b in sorted(pred, key=lambda b: -b.score):
        best, best_j = iou, -1
        for j, t in enumerate(truth):
            if j not in used and (v := iou([b.x0, b.y0, b.x1, b.y1], list(t))) >= best:
                best, best_j = v, j
        if best_j >= 0:
            used.add(best_j)
            hits += 1
    return hits


def evaluate(detector: Detector, split: Path, limit: int | None = None) -> dict:
    """Callout recall and precision at IoU 0.5 on whole drawings (and for general text)."""
    tp = n_pred = n_truth = 0
    text_tp = text_pred = text_truth = 0
    for truth_file in sorted((split / "truth").glob("*.json"))[:limit]:
        truth = json.loads(truth_file.read_text())
        gray = cv2.imread(str(split / "images" / f"{truth_file.stem}.png"), cv2.IMREAD_GRAYSCALE)
        boxes = detector.detect(gray)
        dims = [b for b in boxes if b.cls == 0]
        texts = [b for b in boxes if b.cls == 1]
        t_dims = [tuple(d["bbox"]) for d in truth["dimensions"]]
        t_texts = [tuple(t["bbox"]) for t in truth["texts"]]
        tp += match_boxes(dims, t_dims)
        n_pred += len(dims)
        n_truth += len(t_dims)
        text_tp += match_boxes(texts, t_texts)
        text_pred += len(texts)
        text_truth += len(t_texts)
    return {
        "recall": tp / n_truth if n_truth else 0.0,
        "precision": tp / n_pred if n_pred else 0.0,
        "text_recall": text_tp / text_truth if text_truth else 0.0,
        "text_precision": text_tp / text_pred if text_pred else 0.0,
        "n_truth": n_truth,
        "n_pred": n_pred,
    }
