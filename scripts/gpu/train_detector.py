"""The long detector training, for a lent GPU machine (run by scripts/gpu/train_detector.sh).

Generates the training drawings there (same generator and seeds as the DVC splits, more of
them), trains YOLO11n from its yaml with `dimflow.detect.train.fit` under a fixed time budget,
and writes the run (best weights without optimizer state, results.csv, run.json) to --out.
Back here, `dimflow train detector --run-dir <that folder>` exports ONNX, evaluates, logs the
run to MLflow and registers it: the same path as a CPU run from then on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dimflow.detect.data import build_split, window_split  # noqa: E402
from dimflow.detect.train import DetectorParams, fit, write_data_yaml  # noqa: E402
from dimflow.detect.yolo_env import offline  # noqa: E402


def adapt_to_bare_machine() -> None:
    """Two ultralytics steps that need what a bare, offline GPU image lacks.

    - check_amp downloads yolo26n.pt to compare fp16 against fp32 outputs; offline it cannot,
      so AMP is taken as working (CUDA on Hopper runs YOLO's fp16 fine).
    - read_results_csv imports polars, whose 54 MB runtime wheel does not fit the transfer to
      the machine; the standard csv module reads the same file.
    """
    import csv

    import ultralytics.engine.trainer as trainer

    trainer.check_amp = lambda model: True

    def read_results_csv(self) -> dict:
        try:
            with open(self.csv) as f:
                rows = list(csv.DictReader(f))
            return {k.strip(): [float(r[k]) for r in rows] for k in rows[0]} if rows else {}
        except Exception:
            return {}

    trainer.BaseTrainer.read_results_csv = read_results_csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/detector"))
    ap.add_argument("--n-train", type=int, default=1600)
    ap.add_argument("--n-val", type=int, default=50)
    ap.add_argument("--train-seed", type=int, default=101)
    ap.add_argument("--val-seed", type=int, default=202)
    ap.add_argument("--imgsz", type=int, default=1600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--nbs", type=int, default=16)
    ap.add_argument("--hours", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=100, help="upper bound; --hours decides")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--device", default="0")
    ap.add_argument("--cad-share", type=float, default=0.0,
                    help="share of CAD-style drawings (frames, datums, roughness: the detector's classes 3-5)")
    ap.add_argument("--window", type=int, default=0,
                    help="train on windows of this many px cut at the detector's scale (a CPU run); 0: whole drawings")
    ap.add_argument("--windows", type=int, default=2, help="windows per drawing")
    ap.add_argument("--lr0", type=float, default=0.01, help="initial learning rate (lower to fine-tune)")
    ap.add_argument("--init", default=None, help="a detector .pt to fine-tune from (e.g. the champion's detector.pt)")
    ap.add_argument("--commit", default="", help="the checkout's git commit (the machine gets no .git)")
    args = ap.parse_args()

    offline()
    adapt_to_bare_machine()
    out_run = args.out / "detector-run"
    (out_run / "weights").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    procs = len(os.sched_getaffinity(0))
    sheets = args.work / "sheets" if args.window else args.work
    n_boxes = build_split(sheets, "train", args.train_seed, args.n_train, args.imgsz, workers=procs,
                          cad_share=args.cad_share)  # fmt: skip
    build_split(sheets, "val", args.val_seed, args.n_val, args.imgsz, workers=procs, cad_share=args.cad_share)
    if args.window:
        for split, seed in (("train", args.train_seed), ("val", args.val_seed)):
            n = window_split(sheets, split, args.work, args.window, args.windows, seed)
            print(f"{split}: {n} windows of {args.window} px", flush=True)
    write_data_yaml(args.work)
    t_data = time.time() - t0
    print(f"generated {args.n_train}+{args.n_val} drawings ({n_boxes} train boxes) in {t_data:.0f} s", flush=True)

    params = DetectorParams(
        epochs=args.epochs,
        imgsz=args.window or args.imgsz,
        batch=args.batch,
        max_train=args.n_train,
        max_val=args.n_val,
        workers=args.workers,
        resume=False,
        hours=args.hours,
        cache="ram" if args.device != "cpu" else None,
        amp=args.device != "cpu",
        nbs=args.nbs,
        init=args.init,
        lr0=args.lr0,
    )
    from ultralytics.utils.torch_utils import strip_optimizer

    def keep_best(trainer) -> None:  # a copy that survives a run cut short
        if trainer.best.is_file():
            strip_optimizer(trainer.best, out_run / "weights" / "best.pt")
        shutil.copy(trainer.csv, out_run / "results.csv")

    def report(trainer) -> None:
        if trainer.epoch >= trainer.epochs:
            print("final validation of best.pt:", end=" ")
        shown = " ".join(f"{k.split('/')[-1]}={v:.3f}" for k, v in trainer.metrics.items() if "(B)" in k)
        print(f"epoch {trainer.epoch + 1}/{trainer.epochs} {time.time() - t1:.0f}s {shown}", flush=True)

    t1 = time.time()
    run = fit(args.work, params, args.device, callbacks={"on_model_save": keep_best, "on_fit_epoch_end": report})
    t_train = time.time() - t1
    shutil.copy(run / "weights" / "best.pt", out_run / "weights" / "best.pt")
    shutil.copy(run / "results.csv", out_run / "results.csv")
    import torch

    info = {
        "device": f"cuda:{args.device} ({torch.cuda.get_device_name(int(args.device))})"
        if args.device != "cpu"
        else "cpu",
        "n_train_drawings": args.n_train,
        "n_val_drawings": args.n_val,
        "train_data": {"generator_seed": args.train_seed, "indices": f"0..{args.n_train - 1}",
                       "cad_share": args.cad_share, "window": args.window, "windows": args.windows},
        "val_data": {"generator_seed": args.val_seed, "indices": f"0..{args.n_val - 1}", "cad_share": args.cad_share},
        "remote_params": asdict(params),
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "python": platform.python_version(),
        "git_commit": args.commit
        or subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    (out_run / "run.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
