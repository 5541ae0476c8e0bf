"""Where the pipeline's value errors are on a synthetic split: each false dimension named by what
the truth has under it (a frame, a datum, a roughness mark, the title block, a general text), each
missed dimension with what was read there, and right and wrong dimensions per confidence bin, so a
change aimed at one kind of error can be checked against the others.

.venv/bin/python bench/errors.py data/synth/cad_val [--override reader=data/models/callout-reader/3] [--text-layer]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from dimflow.settings import configure_environment

configure_environment()


def _centre_in(box: list[float], region: list[float], pad: float = 0.0) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return region[0] - pad <= cx <= region[2] + pad and region[1] - pad <= cy <= region[3] + pad


def under(box: list[float], truth: dict) -> str:
    """What the truth has where a false dimension sits."""
    for key, name in (("gdt", "frame"), ("datums", "datum"), ("surface_finish", "roughness")):
        if any(_centre_in(box, item["bbox"], 6) for item in truth.get(key) or []):
            return name
    tb = truth.get("title_block") or {}
    if tb.get("bbox") and _centre_in(box, tb["bbox"]):
        return "title block"
    if any(_centre_in(box, d["bbox"], 6) for d in truth["dimensions"]):
        return "dimension (split or duplicate)"
    if any(_centre_in(box, t["bbox"], 6) for t in truth.get("texts") or []):
        return "text"
    return "nothing"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("split", type=Path)
    ap.add_argument("--override", action="append", default=[], help="role=folder (repeat)")
    ap.add_argument("--text-layer", action="store_true", help="read each sheet's PDF text layer (pdf/)")
    ap.add_argument("--quiet", action="store_true", help="counts only, no per-error lines")
    args = ap.parse_args()

    from dimflow import champions, inputs, pdftext, stages
    from dimflow.evaluate import Score, load_truth, match, value_match
    from dimflow.settings import get_settings

    folders = {role: get_settings().baseline_dir / role for role in champions.ROLES}
    for item in args.override:
        role, _, folder = item.partition("=")
        folders[role] = Path(folder)
    models = champions.models_at(folders)
    score, kinds, bins = Score(), Counter(), Counter()
    for image in sorted((args.split / "images").glob("*.png")):
        truth = load_truth(args.split / "truth" / f"{image.stem}.json")
        if args.text_layer:
            pdf = args.split / "pdf" / f"{image.stem}.pdf"
            data = pdf.read_bytes()
            page = inputs.load_pages(data, pdf.name)[0]
            runs = pdftext.page_text(data, 0, page.dpi)
        else:
            page, runs = inputs.load_path(image)[0], None
        result = stages.process_page(models, page.gray, stages.loose_page(page.gray, str(image), page.dpi), runs=runs)
        preds = [d.model_dump() for d in result.dimensions]
        score.add(preds, truth["dimensions"])
        pairs = match(preds, truth["dimensions"], value_match)
        hit_p, hit_t = {p for p, _ in pairs}, {t for _, t in pairs}
        for i, p in enumerate(preds):
            right = i in hit_p
            bins[(min(int(p["confidence"] * 10), 9), right)] += 1
            if not right:
                kind = under(p["bbox"], truth)
                kinds[kind] += 1
                if not args.quiet:
                    print(f"{image.stem} FALSE  {p['text']!r:24} conf {p['confidence']:.2f}  under: {kind}")
        for j, t in enumerate(truth["dimensions"]):
            if j not in hit_t:
                near = [p["text"] for p in preds if _centre_in(p["bbox"], t["bbox"], 6)]
                as_text = [x.text for x in result.texts if _centre_in(list(x.bbox), t["bbox"], 6)]
                how = "read as a wrong dimension" if near else "text" if as_text else "no box"
                kinds[f"missed, {how}"] += 1
                if not args.quiet:
                    print(f"{image.stem} MISSED {t['text']!r:24} read: {near or '-'!r} as text: {as_text or '-'!r}")
    print(f"\n{args.split}: value F1 {score.value_f1:.4f}  recall {score.detect_recall:.3f}  "
          f"precision {score.detect_precision:.3f}  n_truth {score.n_truth}")  # fmt: skip
    print("errors:", dict(kinds.most_common()))
    print("| confidence | right | wrong |\n|---|---|---|")
    for b in range(10):
        if bins[(b, True)] or bins[(b, False)]:
            print(f"| {b / 10:.1f}-{(b + 1) / 10:.1f} | {bins[(b, True)]} | {bins[(b, False)]} |")


if __name__ == "__main__":
    main()
