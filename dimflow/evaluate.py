"""The contract's scoring rule: value F1, full F1 and per-kind recall over many drawings.

A prediction matches a truth when the truth's box centre lies inside the predicted box
(or their IoU is at least 0.3), the kind is equal and the nominal is equal within 1e-6;
each truth is matched at most once. Full matches also need upper, lower, fit and count.
Drawings are paired by file name and scored together (micro-averaged).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dimflow.schema import validate_json

KINDS = ("linear", "diameter", "radius", "angular", "thread", "chamfer")
EPS = 1e-6


class ScoreInputError(ValueError):
    """A result file is missing, unreadable or breaks the contract."""


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def boxes_match(pred: list[float], truth: list[float]) -> bool:
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    inside = pred[0] <= cx <= pred[2] and pred[1] <= cy <= pred[3]
    return inside or iou(pred, truth) >= 0.3


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= EPS


def value_match(p: dict, t: dict) -> bool:
    return p["kind"] == t["kind"] and abs(p["nominal"] - t["nominal"]) <= EPS and boxes_match(p["bbox"], t["bbox"])


def full_match(p: dict, t: dict) -> bool:
    return (
        value_match(p, t)
        and _same(p["upper"], t["upper"])
        and _same(p["lower"], t["lower"])
        and p["fit"] == t["fit"]
        and p["count"] == t["count"]
    )


def match(preds: list[dict], truths: list[dict], rule) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, most confident prediction first."""
    order = sorted(range(len(preds)), key=lambda i: -preds[i].get("confidence", 0.0))
    used: set[int] = set()
    pairs = []
    for i in order:
        for j, t in enumerate(truths):
            if j not in used and rule(preds[i], t):
                used.add(j)
                pairs.append((i, j))
                break
    return pairs


@dataclass
class Score:
    n_truth: int = 0
    n_pred: int = 0
    value_tp: int = 0
    full_tp: int = 0
    kind_truth: Counter = field(default_factory=Counter)
    kind_value: Counter = field(default_factory=Counter)
    kind_full: Counter = field(default_factory=Counter)
    drawings: int = 0
    missing: list[str] = field(default_factory=list)

    @staticmethod
    def _f1(tp: int, n_pred: int, n_truth: int) -> float:
        if n_pred == 0 and n_truth == 0:
            return 1.0
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_truth if n_truth else 0.0
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def value_f1(self) -> float:
        return self._f1(self.value_tp, self.n_pred, self.n_truth)

    @property
    def full_f1(self) -> float:
        return self._f1(self.full_tp, self.n_pred, self.n_truth)

    def add(self, preds: list[dict], truths: list[dict]) -> None:
        self.drawings += 1
        self.n_pred += len(preds)
        self.n_truth += len(truths)
        self.kind_truth.update(t["kind"] for t in truths)
        for rule, counter, attr in (
            (value_match, self.kind_value, "value_tp"),
            (full_match, self.kind_full, "full_tp"),
        ):
            pairs = match(preds, truths, rule)
            setattr(self, attr, getattr(self, attr) + len(pairs))
            counter.update(truths[j]["kind"] for _, j in pairs)

    def summary_line(self) -> str:
        return f"value_f1={self.value_f1:.3f} full_f1={self.full_f1:.3f} n_truth={self.n_truth} n_pred={self.n_pred}"


def load_result(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoreInputError(f"{path}: not a readable JSON result ({exc})") from exc
    try:
        validate_json(doc)
    except Exception as exc:  # jsonschema.ValidationError carries a long message
        raise ScoreInputError(
            f"{path}: does not follow the drawing-result contract: {getattr(exc, 'message', exc)}"
        ) from exc
    return doc


def score_dirs(pred_dir: Path, truth_dir: Path) -> Score:
    """Score every truth file against the prediction of the same name (absent = no dimensions)."""
    truth_files = sorted(truth_dir.glob("*.json"))
    if not truth_files:
        raise ScoreInputError(f"{truth_dir}: no truth files (*.json) found")
    score = Score()
    for tf in truth_files:
        truth = load_result(tf)
        pf = pred_dir / tf.name
        if pf.exists():
            preds = load_result(pf)["dimensions"]
        else:
            preds = []
            score.missing.append(tf.name)
        score.add(preds, truth["dimensions"])
    return score
