"""Vector PDFs read from their text layer against OCR: synthetic CAD-style sheets (feature control
frames, datums, roughness symbols; `generate(..., cad=True)`) exported as CAD systems export them
(paths and embedded-font text, the diameter sign stroked on every other sheet), from a seed the
project never trained or tuned on, scored by the contract's rule (dimensions, frames, datums,
finishes, title-block fields), with the time per sheet.

.venv/bin/python bench/textlayer.py [--n 24] [--seed 5150] [--ocr] [--real]

--ocr also reads the same PDFs without their text layer (OCR path), for the comparison;
--real also times the three real SOLIDWORKS sheets (samples/real) end to end in-process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dimflow.settings import configure_environment

configure_environment()
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--seed", type=int, default=5150)
    ap.add_argument("--ocr", action="store_true", help="also read the PDFs by OCR (no text layer)")
    ap.add_argument("--real", action="store_true", help="also time the real sheets in samples/real")
    args = ap.parse_args()

    from dimflow import stages
    from dimflow.champions import get_models
    from dimflow.evaluate import score_dirs
    from dimflow.inputs import content_hash, load_pages
    from dimflow.pdftext import page_text
    from dimflow.synth.dataset import pdf_truth
    from dimflow.synth.generate import generate
    from dimflow.synth.pdf import scene_pdf

    work = Path(tempfile.mkdtemp(prefix="dimflow-textlayer-"))
    truth, pred_text, pred_ocr = work / "truth", work / "text", work / "ocr"
    for d in (truth, pred_text, pred_ocr):
        d.mkdir()
    models = get_models()
    times: dict[str, list[float]] = {"text": [], "ocr": []}
    fields: dict[str, dict] = {}
    for i in range(args.n):
        d = generate(args.seed, i, degrade_share=0.0, cad=True)
        pdf = scene_pdf(d.scene, draw_diameter=i % 2 == 0)
        t = pdf_truth(d, pdf, f"{d.drawing_id}.pdf")  # boxes in the PDF's pixels at 200 dpi
        fields[f"{i:03d}"] = t.title_block.fields if t.title_block else {}
        (truth / f"{i:03d}.json").write_text(t.to_json())
        page = load_pages(pdf, f"{i}.pdf")[0]
        ref = stages.loose_page(page.gray, f"{i}.pdf", page.dpi, content_hash(pdf))
        for name, runs, out in (("text", page_text(pdf, 0, page.dpi), pred_text), ("ocr", None, pred_ocr)):
            if name == "ocr" and not args.ocr:
                continue
            t0 = time.perf_counter()
            result = stages.process_page(models, page.gray, ref, runs=runs)
            times[name].append(time.perf_counter() - t0)
            (out / f"{i:03d}.json").write_text(result.to_json())
    print(f"{args.n} synthetic vector PDFs, seed {args.seed} (diameter sign stroked on every other sheet)")
    print("| path | value F1 | full F1 | det recall | det precision | n truth | n pred | s a sheet (median) |")
    print("|---|---|---|---|---|---|---|---|")
    scores = {}
    for name, folder in (("text layer", pred_text), ("OCR", pred_ocr)):
        key = "text" if folder is pred_text else "ocr"
        if not times[key]:
            continue
        s = score_dirs(folder, truth)
        print(f"| {name} | {s.value_f1:.3f} | {s.full_f1:.3f} | {s.detect_recall:.3f} | {s.detect_precision:.3f} | "
              f"{s.n_truth} | {s.n_pred} | {statistics.median(times[key]):.2f} |")  # fmt: skip
        scores[name] = s
    for name, s in scores.items():
        parts = [f"{key}: {c['tp']}/{c['truth']} found, {c['full']} fully right, {c['pred']} reported"
                 for key, c in s.other.items()]  # fmt: skip
        print(f"{name}: " + "; ".join(parts) + f"; misfiled as dimensions: {s.misfiled}")
    got = want = 0
    for stem, truth_fields in fields.items():
        doc = json.loads((pred_text / f"{stem}.json").read_text())
        have = (doc.get("title_block") or {}).get("fields", {})
        want += len(truth_fields)
        got += sum(have.get(k) == v for k, v in truth_fields.items())
    print(f"text layer: title-block fields right {got}/{want}")
    if args.real:
        print("\nreal SOLIDWORKS sheets, in-process, warm models (load + text layer + detect + segment + merge):")
        for path in sorted((ROOT / "samples" / "real").glob("*.PDF")):
            data = path.read_bytes()
            t0 = time.perf_counter()
            page = load_pages(data, path.name)[0]
            runs = page_text(data, 0, page.dpi)
            ref = stages.loose_page(page.gray, path.name, page.dpi, content_hash(data))
            result = stages.process_page(models, page.gray, ref, runs=runs)
            took = time.perf_counter() - t0
            print(f"  {path.name}: {took:.2f} s, {len(result.dimensions)} dimensions, {len(result.gdt)} frames, "
                  f"stages {json.dumps(result.timings_ms)}")  # fmt: skip
    print(f"(files in {work})")


if __name__ == "__main__":
    main()
