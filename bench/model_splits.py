"""A model set on the splits that decide a promotion by hand: each model's own figures and the
pipeline's value F1 on synthetic splits (plain test, the gate, fresh CAD-style seeds) and on the
labelled real sheets (text layer and as rasters). The shipped models, with any role replaced by a
folder (a candidate from the registry, `data/models/<name>/<version>`).

.venv/bin/python bench/model_splits.py [--override reader=data/models/callout-reader/3]
    [--splits data/synth/test,data/synth/gate,/tmp/cad6161] [--crops ...] [--real data/real]

A fresh CAD-style seed: `dimflow synth --cad --out /tmp/cad6161 --n 24 --seed 6161`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dimflow.settings import configure_environment

configure_environment()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--override", action="append", default=[], help="role=folder (repeat)")
    ap.add_argument("--splits", default="data/synth/test,data/synth/gate", help="pipeline value F1 on these")
    ap.add_argument("--crops", default="data/synth/val,data/synth/cad_val,data/synth/gate,data/synth/test",
                    help="the reader's exact match on these splits' callout crops")  # fmt: skip
    ap.add_argument("--real", default="data/real", help="labelled real sheets ('' to skip)")
    args = ap.parse_args()

    from dimflow import champions, gate
    from dimflow.read import train as rd
    from dimflow.settings import get_settings

    folders = {role: get_settings().baseline_dir / role for role in champions.ROLES}
    for item in args.override:
        role, _, folder = item.partition("=")
        if role not in folders or not folder:
            raise SystemExit(f"--override wants role=folder with role one of {', '.join(folders)}: {item!r}")
        folders[role] = Path(folder)
    models = champions.models_at(folders)
    print("models:", {role: str(f) for role, f in folders.items()}, flush=True)
    print("| what | split | figure | n |\n|---|---|---|---|")
    for split in filter(None, args.crops.split(",")):
        if (Path(split) / "crops").is_dir():
            r = rd.evaluate(models.reader, rd.load_crops(Path(split)))
            print(f"| reader exact (stacked) | {split} | {r['exact_match']:.4f} ({r['exact_match_stacked']:.3f}) | "
                  f"{r['n_crops']} |", flush=True)  # fmt: skip
    for split in filter(None, args.splits.split(",")):
        t0 = time.perf_counter()
        s = gate.synthetic_score(models, Path(split))
        print(f"| pipeline value F1 (det R / P) | {split} | {s.value_f1:.4f} ({s.detect_recall:.3f} / "
              f"{s.detect_precision:.3f}) | {s.n_truth} in {time.perf_counter() - t0:.0f} s |", flush=True)  # fmt: skip
    if args.real and (Path(args.real) / "labels").is_dir():
        for text_layer in (True, False):
            s = gate.real_score(models, Path(args.real), text_layer=text_layer)
            print(f"| real value F1 (det R / P) | {'text layer' if text_layer else 'as rasters'} | "
                  f"{s.value_f1:.4f} ({s.detect_recall:.3f} / {s.detect_precision:.3f}) | {s.n_truth} |", flush=True)


if __name__ == "__main__":
    main()
