"""Print per-stage and end-to-end time per drawing on a warm worker (A4 and A3), and Prefect's
overhead per flow run.

.venv/bin/python bench/process.py [--n 3] [--dpi 200]

Stages run in-process through dimflow.stages (models loaded once, as in a warm worker); then
the same drawings go through the `process-drawing` flow on Prefect's local API with an empty
cache, and the difference per run is the engine's overhead (tasks, result persistence, storage).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from dimflow.settings import configure_environment

configure_environment()


def drawings(sheet: str, dpi: int, n: int, work: Path, seed: int | None = None) -> list[Path]:
    """n synthetic drawings of one sheet size and dpi as PNG files (seed: 9100 + dpi unless given)."""
    from dimflow.synth.generate import generate

    seed = 9100 + dpi if seed is None else seed
    out, i = [], 0
    while len(out) < n:
        d = generate(seed, i)
        i += 1
        if d.sheet == sheet and d.dpi == dpi:
            buf = io.BytesIO()
            d.rendered.image.save(buf, format="PNG")
            p = work / f"{sheet}-{seed}-{i}.png"
            p.write_bytes(buf.getvalue())
            out.append(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="drawings per sheet size")
    ap.add_argument("--dpi", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dimflow-bench-"))
    os.environ["DIMFLOW_STORAGE_URL"] = str(work / "store")
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(work / "prefect-results")  # an empty cache

    import torch

    from dimflow import champions, report, stages
    from dimflow import inputs as dio
    from dimflow.schema import drawing_id

    t0 = time.perf_counter()
    models = champions.get_models()
    load_s = time.perf_counter() - t0
    figures: dict[str, object] = {"threads": torch.get_num_threads(), "models": models.key, "model_load_s": load_s}
    for sheet in ("A4", "A3"):
        files = drawings(sheet, args.dpi, args.n, work)
        warm = dio.load_path(files[0])[0].gray
        stages.process_page(models, warm, stages.loose_page(warm))  # warm-up
        took: dict[str, list[float]] = {}
        for f in files:
            t = time.perf_counter()
            data = f.read_bytes()
            page = dio.load_pages(data, f.name)[0]
            t_load = (time.perf_counter() - t) * 1000
            ref = stages.loose_page(page.gray, str(f), page.dpi, drawing_id(data))
            result = stages.process_page(models, page.gray, ref)
            t_out = time.perf_counter()
            report.balloon_png(page.gray, result)
            report.inspection_csv(result)
            result.to_json()
            t_report = (time.perf_counter() - t_out) * 1000
            row = {"load": t_load, **result.timings_ms, "outputs": t_report, "total": (time.perf_counter() - t) * 1000}
            for k, v in row.items():
                took.setdefault(k, []).append(v)
        h, w = page.gray.shape
        figures[f"{sheet} {w}x{h} px, in-process ms"] = {k: round(statistics.mean(v), 1) for k, v in took.items()}
        figures[f"{sheet} in-process total ms"] = round(statistics.mean(took["total"]), 1)
        figures[f"_{sheet}_files"] = [str(f) for f in files]

    from flows.process import process_drawing

    files_by_sheet = {sheet: figures.pop(f"_{sheet}_files") for sheet in ("A4", "A3")}
    process_drawing(files_by_sheet["A4"][0])  # starts the local API; this drawing is not timed below
    for sheet, files in files_by_sheet.items():
        timed = files[1:] if sheet == "A4" else files
        runs = []
        for f in timed:
            t = time.perf_counter()
            process_drawing(f)
            runs.append((time.perf_counter() - t) * 1000)
        flow_ms = statistics.mean(runs)
        figures[f"{sheet} flow run ms (empty cache)"] = round(flow_ms, 1)
        figures[f"{sheet} Prefect overhead ms per run"] = round(flow_ms - figures[f"{sheet} in-process total ms"], 1)
        t = time.perf_counter()
        process_drawing(timed[0])
        figures[f"{sheet} flow run ms (cache hit, no model runs)"] = round((time.perf_counter() - t) * 1000, 1)
    for k, v in figures.items():
        print(f"{k}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
