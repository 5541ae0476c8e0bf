"""The gate a retrained model passes before it serves users.

A candidate is scored against the current champion on data kept apart from the validation split
that picked its epochs: a fixed synthetic gate split (the model's own metric there, and the whole
pipeline's value F1 with the candidate swapped in) and the labelled real sheets (pipeline value
F1, read from their text layer and again as rasters through OCR, which is where the reader and
detector matter). It is promoted only when its metric is better by a margin and no real-sheet
figure is worse; otherwise it stays `challenger`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dimflow.evaluate import Score, load_truth
from dimflow.realset import drawing_named


def model_metric(key: str, metrics: dict[str, Any]) -> float:
    """The number a model is gated on: the detector's F1 of callout recall and precision (recall
    alone would reward boxing everything), the reader's exact match, the segmenter's accuracy."""
    from dimflow.lifecycle import get_kind

    if key == "detector":
        r, p = float(metrics["recall"]), float(metrics["precision"])
        return 2 * p * r / (p + r) if p + r else 0.0
    return float(metrics[get_kind(key).metric])  # the metric its training picks epochs and promotes by


def with_model(models: Any, key: str, model: Any, ref: str) -> Any:
    """The model set with one role's model replaced (the pipeline as it would serve the candidate)."""
    return dataclasses.replace(models, **{key: model}, refs=dict(models.refs, **{key: ref}))


def synthetic_score(models: Any, split: Path) -> Score:
    """The whole pipeline on a synthetic split (images/*.png against truth/*.json)."""
    from dimflow import inputs, stages

    score = Score()
    for image in sorted((split / "images").glob("*.png")):
        page = inputs.load_path(image)[0]
        result = stages.process_page(models, page.gray, stages.loose_page(page.gray, str(image), page.dpi))
        truth = load_truth(split / "truth" / f"{image.stem}.json")
        score.add([d.model_dump() for d in result.dimensions], truth["dimensions"])
    return score


def real_score(models: Any, real: Path, text_layer: bool = True) -> Score:
    """The whole pipeline on the labelled real sheets (`real`/<name>.pdf or a raster, against
    labels/<name>.json), a PDF from its text layer, or with it ignored (as scans and rasters are read)."""
    from dimflow import inputs, pdftext, stages

    score = Score()
    for label in sorted((real / "labels").glob("*.json")):
        drawing = drawing_named(real, label.stem)
        if drawing is None:
            continue
        data = drawing.read_bytes()
        truth = load_truth(label)
        page = inputs.load_pages(data, drawing.name)[0]
        pdf = drawing.suffix.lower() == ".pdf"
        runs = pdftext.page_text(data, 0, page.dpi) if text_layer and pdf else None
        result = stages.process_page(models, page.gray, stages.loose_page(page.gray, str(drawing), page.dpi), runs=runs)
        pred = result.model_dump()
        score.add(pred["dimensions"], truth["dimensions"])
        score.add_other(pred, truth)
    return score


@dataclass
class GateScores:
    metric: float  # the model's own metric on the gate split
    gate_f1: float  # pipeline value F1 on the gate split
    real_f1: float | None = None  # pipeline value F1 on the real sheets, text layer
    real_ocr_f1: float | None = None  # ... read as rasters

    def row(self) -> dict[str, float | None]:
        return {k: (round(v, 4) if v is not None else None) for k, v in dataclasses.asdict(self).items()}


def pipeline_scores(models: Any, gate: Path, real: Path | None) -> tuple[float, float | None, float | None]:
    """The whole pipeline's value F1 on the gate split, and on the labelled real sheets from their
    text layer and as rasters (None without a labelled real set)."""
    if real is None or not (real / "labels").is_dir():
        return synthetic_score(models, gate).value_f1, None, None
    return (synthetic_score(models, gate).value_f1, real_score(models, real, text_layer=True).value_f1,
            real_score(models, real, text_layer=False).value_f1)  # fmt: skip


def gate_scores(key: str, model: Any, ref: str, champions: Any, gate: Path, real: Path | None) -> GateScores:
    """A model's gate figures: its own metric on `gate`, and the pipeline's with it in the champions' place."""
    from dimflow.lifecycle import get_kind

    metric = model_metric(key, get_kind(key).evaluate(model, gate))
    return GateScores(metric, *pipeline_scores(with_model(champions, key, model, ref), gate, real))


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(candidate: GateScores, champion: GateScores | None, margin: float) -> Decision:
    """Promote when the candidate's metric beats the champion's by `margin` and no real-sheet figure
    (or the gate split's pipeline F1) is lower; a model with no champion is promoted."""
    if champion is None:
        return Decision(True, "no champion yet")
    worse = [name for name, c, h in (("gate pipeline F1", candidate.gate_f1, champion.gate_f1),
                                      ("real-sheet F1 (text layer)", candidate.real_f1, champion.real_f1),
                                      ("real-sheet F1 (OCR)", candidate.real_ocr_f1, champion.real_ocr_f1))
             if c is not None and h is not None and c < h - 1e-9]  # fmt: skip
    if candidate.metric < champion.metric + margin:
        return Decision(False, f"metric {candidate.metric:.4f} is not {margin:g} better than the champion's "
                               f"{champion.metric:.4f}")  # fmt: skip
    if worse:
        return Decision(False, "worse than the champion on " + ", ".join(worse))
    return Decision(True, f"metric {candidate.metric:.4f} beats {champion.metric:.4f} by at least {margin:g}, "
                          "no worse on the real sheets")  # fmt: skip
