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

from dimflow.detect.data import scaled
from dimflow.detect.model import CLASSES, CONFIG, ONNX, WEIGHTS, Box, Detector, DetectorConfig
from dimflow.detect.yolo_env import offline
from dimflow.devices import ultralytics_device
from dimflow.evaluate import iou
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
    hours: float | None = None  # a fixed time budget: ultralytics fits its schedule into it
    cache: str | None = None  # "ram" keeps decoded drawings in memory (GPU runs)
    amp: bool = False
    nbs: int | None = None  # nominal batch for gradient accumulation (ultralytics' default 64)
    run_dir: str | None = None  # a finished run from elsewhere (the GPU script): weights/, results.csv, run.json
    init: str | None = None  # a detector .pt to fine-tune from (its weights move over; a new class head is fitted)


def prepare(split: Path, out: Path, name: str, imgsz: int, limit: int | None) -> int:
    """Copy a split's drawings, long side scaled to imgsz, with their YOLO labels."""
    images = sorted((split / "images").glob("*.png"))[:limit]
    (out / "images" / name).mkdir(parents=True, exist_ok=True)
    (out / "labels" / name).mkdir(parents=True, exist_ok=True)
    for p in images:
        dst = out / "images" / name / p.name
        if not dst.is_file():
            cv2.imwrite(str(dst), scaled(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), imgsz))
        shutil.copy(split / "labels" / f"{p.stem}.txt", out / "labels" / name / f"{p.stem}.txt")
    return len(images)


def write_data_yaml(ds: Path) -> Path:
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES))
    (ds / "data.yaml").write_text(f"path: {ds}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return ds / "data.yaml"


def _dataset_dir(data_root: Path, params: DetectorParams) -> Path:
    key = hashlib.sha256(f"{data_root.resolve()}|{params.imgsz}|{params.max_train}|{params.max_val}".encode())
    return get_settings().data_dir.resolve() / "cache" / "detector" / key.hexdigest()[:16]


def widen_head(init: Path, out: Path) -> Path:
    """A fine-tuning start for today's classes from a detector trained on fewer of them (the shipped
    one knows dimension, text and title block): every weight moves over, and each class it knew keeps
    its row of the class convolutions, so the new model finds what the old one found from its first
    step while it learns the new classes. Without this ultralytics drops the whole class head (its
    shape changed) and the old classes are learned again from nothing. Returns `init` itself when it
    already has every class."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    ckpt = torch.load(init, map_location="cpu", weights_only=False)
    old = (ckpt.get("ema") or ckpt["model"]).float()
    known = [old.names[i] for i in range(old.nc)]
    if old.nc == len(CLASSES):
        return init
    if known != list(CLASSES[: old.nc]):
        raise ValueError(f"{init}: classes {known} are not a prefix of {list(CLASSES)}; cannot widen its head")
    new = DetectionModel(dict(old.yaml, nc=len(CLASSES)), ch=old.yaml.get("channels", 3), nc=len(CLASSES),
                         verbose=False)  # fmt: skip
    state, moved, widened = new.state_dict(), 0, 0
    for name, value in old.state_dict().items():
        target = state.get(name)
        if target is None:
            continue
        if target.shape == value.shape:
            target.copy_(value)
            moved += 1
        elif value.shape[0] == old.nc and target.shape[0] == len(CLASSES) and target.shape[1:] == value.shape[1:]:
            target[: old.nc].copy_(value)  # a class convolution's rows (weights or biases) for the known classes
            widened += 1
    new.load_state_dict(state)
    new.nc, new.names, new.stride = len(CLASSES), dict(enumerate(CLASSES)), old.stride
    new.args = getattr(old, "args", {})
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": new, "train_args": ckpt.get("train_args", {}), "date": ckpt.get("date"),
                "version": ckpt.get("version"), "epoch": -1}, out)  # fmt: skip
    log.info("widened %s: %d tensors moved, %d class rows kept for %s", init, moved, widened, known)
    return out


def fit(
    ds: Path,
    params: DetectorParams,
    device: str,
    progress: Callable[[str, int, int], None] | None = None,
    callbacks: dict[str, Callable] | None = None,
) -> Path:
    """Run (or resume) YOLO training on the prepared folder `ds`; returns the run folder."""
    offline()
    from ultralytics import YOLO

    run = ds / "runs" / "train"
    last = run / "weights" / "last.pt"
    if params.resume and last.is_file():
        log.info("resuming detector training from %s", last)
        YOLO(str(last)).train(resume=True)
        return run
    init = params.init and str(widen_head(Path(params.init), ds / "init.pt"))
    model = YOLO(init) if init else YOLO("yolo11n.yaml")
    if progress:

        def on_epoch(trainer) -> None:
            progress(f"epoch {trainer.epoch + 1}", trainer.epoch + 1, trainer.epochs)

        model.add_callback("on_fit_epoch_end", on_epoch)
    for event, fn in (callbacks or {}).items():
        model.add_callback(event, fn)
    extra: dict = {"time": params.hours} if params.hours else {}
    if params.nbs:
        extra["nbs"] = params.nbs
    model.train(
        data=str(write_data_yaml(ds)),
        epochs=params.epochs,
        imgsz=params.imgsz,
        batch=params.batch,
        device=device,
        workers=params.workers,
        project=str(ds / "runs"),
        name="train",
        exist_ok=True,
        pretrained=bool(params.init),  # from the yaml: nothing; with init: its weights, where the shapes match
        amp=params.amp,
        cache=params.cache or False,
        plots=False,
        seed=params.seed,
        lr0=params.lr0,
        mosaic=params.mosaic,
        patience=params.patience,
        fliplr=0.0,
        verbose=False,
        save_period=1,
        **extra,
    )
    return run


def train(
    data_root: Path,
    params: DetectorParams,
    progress: Callable[[str, int, int], None] | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[Detector, dict]:
    """Train on `data_root`/train, validate on `data_root`/val; export ONNX; returns model and metrics.

    With `params.run_dir` no training happens here: that run (trained by the same `fit` on a
    GPU machine, see scripts/gpu/) is exported, evaluated and reported as it is.
    """
    offline()
    device = ultralytics_device()
    ds = _dataset_dir(data_root, params)
    info: dict = {"n_train_drawings": None, "device": device}
    live = False
    if params.run_dir:
        run = Path(params.run_dir)
        if not (run / "weights" / "best.pt").is_file():
            raise FileNotFoundError(f"{run} holds no weights/best.pt; copy back the GPU run's folder")
        if (run / "run.json").is_file():
            info |= json.loads((run / "run.json").read_text())
    else:
        info["n_train_drawings"] = prepare(data_root / "train", ds, "train", params.imgsz, params.max_train)
        prepare(data_root / "val", ds, "val", params.imgsz, params.max_val)
        run = ds / "runs" / "train"
        if params.finish_only:
            if not (run / "weights" / "best.pt").is_file():
                raise FileNotFoundError(f"no detector checkpoint under {run}; train first")
            log.info("exporting the interrupted run's best checkpoint without more training")
        elif params.resume and (run / "weights" / "last.pt").is_file():
            fit(ds, params, device, progress)
        else:
            fit(ds, params, device, progress, {"on_fit_epoch_end": _once_per_epoch(on_epoch)} if on_epoch else None)
            live = True
    detector = export(run / "weights" / "best.pt", ds / "export", params.imgsz)
    history = _history(run / "results.csv")
    if on_epoch and not live:  # trained elsewhere or resumed: the epochs reach MLflow from results.csv
        for epoch, row in enumerate(history):
            on_epoch(epoch, row)
    val = evaluate(detector, data_root / "val", params.max_val)
    logged = asdict(params)
    if "remote_params" in info:  # the parameters the run was actually trained with
        logged = {**info.pop("remote_params"), "run_dir": params.run_dir}
    metrics = {"history": history, "val": val, "params": logged, **info}
    return detector, metrics


def export(best: Path, out: Path, imgsz: int) -> Detector:
    """The checkpoint as the shipped trio: .pt (for PyTorch), .onnx (for onnxruntime) and config."""
    from ultralytics import YOLO

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(best, out / WEIGHTS)
    onnx_path = YOLO(str(out / WEIGHTS)).export(
        format="onnx", imgsz=imgsz, dynamic=True, simplify=False, opset=17, device="cpu"
    )
    if Path(onnx_path).resolve() != (out / ONNX).resolve():
        shutil.move(onnx_path, out / ONNX)
    halve_weights(out / ONNX)
    (out / CONFIG).write_text(json.dumps(asdict(DetectorConfig(imgsz=imgsz)), indent=1) + "\n")
    return Detector.load(out)


def halve_weights(path: Path) -> None:
    """Store the ONNX file's float weights as fp16, each behind a Cast back to fp32.

    Halves the file (the shipped set must stay under 20 MB) while the graph still computes in
    fp32: onnxruntime folds the casts when the session starts, so inference is unchanged.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < 16:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "_fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _once_per_epoch(on_epoch: Callable[[int, dict[str, float]], None]) -> Callable:
    """ultralytics fires on_fit_epoch_end again after training (its final validation of best.pt)."""
    seen: set[int] = set()

    def callback(trainer) -> None:
        if trainer.epoch not in seen and trainer.epoch < trainer.epochs:
            seen.add(trainer.epoch)
            on_epoch(trainer.epoch, _epoch_row(trainer))

    return callback


def _metric(name: str) -> str:
    """ultralytics' column name as an MLflow metric: `metrics/mAP50(B)` -> `metrics_mAP50`."""
    return name.replace("/", "_").replace("(B)", "")


def _epoch_row(trainer) -> dict[str, float]:
    """One epoch as MLflow metrics, named as `_history` names the results.csv columns."""
    row = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **trainer.metrics}
    return {_metric(k): float(v) for k, v in row.items()}


def _history(csv: Path) -> list[dict[str, float]]:
    if not csv.is_file():
        return []
    lines = csv.read_text().strip().splitlines()
    head = [h.strip() for h in lines[0].split(",")]
    rows = []
    for line in lines[1:]:
        vals = [v.strip() for v in line.split(",")]
        rows.append({_metric(k): float(v) for k, v in zip(head, vals, strict=False) if k != "epoch"})
    return rows


def match_boxes(pred: list[Box], truth: list[tuple[float, float, float, float]], min_iou: float = 0.5) -> int:
    """Greedy one-to-one matches of predicted boxes to truth boxes at IoU >= min_iou."""
    used: set[int] = set()
    hits = 0
    for b in sorted(pred, key=lambda b: -b.score):
        best, best_j = min_iou, -1
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
