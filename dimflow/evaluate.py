"""The contract's scoring rule: value F1, full F1 and per-kind recall over many drawings.

A prediction matches a truth when the truth's box centre lies inside the predicted box
(or their IoU is at least 0.3), the kind is equal and the nominal is equal within 1e-6;
each truth is matched at most once. Full matches also need upper, lower, fit and count.
Drawings are paired by file name and scored together (micro-averaged).

The other characteristics follow the contract's rule too: a frame matches on box, characteristic
and tolerance (fully with zone, modifiers and datums), a datum on box and label, a surface finish on
box, parameter and value. Detection is the box rule alone; a predicted dimension whose box is a
truth frame's, datum's or roughness value's is counted as misfiled (never a dimension). Truth may be
the contract's JSON or LabelMe JSON (`dimflow.labelme`), the format the real dev set is kept in.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dimflow.schema import validate_json

CALIBRATION_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
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
    detect_tp: int = 0  # truth dimensions some predicted dimension's box matches (kind and value aside)
    misfiled: int = 0  # predicted dimensions that are a truth frame, datum or roughness value
    other: dict[str, Counter] = field(default_factory=dict)  # gdt / datums / surface_finish: truth, pred, tp, full
    per_drawing: dict[str, dict] = field(default_factory=dict)
    beliefs: list[tuple[float, bool]] = field(default_factory=list)  # (confidence, fully right) per prediction

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

    @property
    def detect_recall(self) -> float:
        return self.detect_tp / self.n_truth if self.n_truth else 1.0

    @property
    def detect_precision(self) -> float:
        return self.detect_tp / self.n_pred if self.n_pred else 1.0

    @property
    def value_accuracy(self) -> float:
        """Truth dimensions read right (kind and nominal), of all truth dimensions."""
        return self.value_tp / self.n_truth if self.n_truth else 1.0

    def add_other(self, pred: dict, truth: dict) -> None:
        """Score the contract's other characteristics of one drawing, and misfiled dimensions."""
        for key, rule, full in _OTHER_RULES:
            t, p = truth.get(key) or [], pred.get(key) or []
            c = self.other.setdefault(key, Counter())
            c["truth"] += len(t)
            c["pred"] += len(p)
            c["tp"] += len(match(p, t, rule))
            c["full"] += len(match(p, t, full))
        marks = [x for key, _, _ in _OTHER_RULES for x in truth.get(key) or []]
        self.misfiled += sum(any(boxes_match(d["bbox"], m["bbox"]) for m in marks) for d in pred.get("dimensions", []))

    def add(self, preds: list[dict], truths: list[dict]) -> None:
        self.drawings += 1
        self.detect_tp += len(match(preds, truths, lambda p, t: boxes_match(p["bbox"], t["bbox"])))
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
            if rule is full_match:
                right = {i for i, _ in pairs}
                self.beliefs += [(float(p.get("confidence", 0.0)), i in right) for i, p in enumerate(preds)]

    def calibration(self, edges: tuple[float, ...] = CALIBRATION_EDGES) -> list[dict]:
        """Share of predicted dimensions fully right, per confidence bin [lo, hi): what the ballooned
        drawing's colours can promise a checker."""
        rows = []
        for lo, hi in itertools.pairwise(edges):
            inside = [ok for c, ok in self.beliefs if lo <= c < hi or (hi == edges[-1] and c == hi)]
            rows.append({"bin": f"[{lo:.2f}, {hi:.2f}{']' if hi == edges[-1] else ')'}", "n": len(inside),
                         "right": sum(inside), "share": sum(inside) / len(inside) if inside else None})  # fmt: skip
        return rows

    def row(self) -> dict:
        """The figures a per-drawing table shows."""
        out = {"dims": self.n_truth, "pred": self.n_pred, "det_recall": self.detect_recall,
               "det_precision": self.detect_precision, "value_acc": self.value_accuracy,
               "value_f1": self.value_f1, "full_f1": self.full_f1, "misfiled": self.misfiled}  # fmt: skip
        for key, c in self.other.items():
            out[f"{key}_truth"], out[f"{key}_pred"], out[f"{key}_tp"], out[f"{key}_full"] = (
                c["truth"], c["pred"], c["tp"], c["full"])  # fmt: skip
        return out

    def summary_line(self) -> str:
        return f"value_f1={self.value_f1:.3f} full_f1={self.full_f1:.3f} n_truth={self.n_truth} n_pred={self.n_pred}"


def gdt_match(p: dict, t: dict) -> bool:
    return (
        p["characteristic"] == t["characteristic"]
        and abs(p["tolerance"] - t["tolerance"]) <= EPS
        and boxes_match(p["bbox"], t["bbox"])
    )


def gdt_full(p: dict, t: dict) -> bool:
    return (
        gdt_match(p, t)
        and p.get("zone") == t.get("zone")
        and sorted(p.get("modifiers", [])) == sorted(t.get("modifiers", []))
        and list(p.get("datums", [])) == list(t.get("datums", []))
    )


def datum_match(p: dict, t: dict) -> bool:
    return p["label"] == t["label"] and boxes_match(p["bbox"], t["bbox"])


def finish_match(p: dict, t: dict) -> bool:
    same = p["parameter"] == t["parameter"] and abs(p["value"] - t["value"]) <= EPS
    return same and boxes_match(p["bbox"], t["bbox"])


_OTHER_RULES = (("gdt", gdt_match, gdt_full), ("datums", datum_match, datum_match),
                ("surface_finish", finish_match, finish_match))  # fmt: skip


def load_truth(path: Path) -> dict:
    """A truth file: the contract's JSON, or LabelMe JSON."""
    from dimflow import labelme

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScoreInputError(f"{path}: not a readable JSON result ({exc})") from exc
    if labelme.is_labelme(doc):
        try:
            return labelme.to_truth(doc, str(path))
        except labelme.LabelError as exc:
            raise ScoreInputError(str(exc)) from exc
    return load_result(path)


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
        truth = load_truth(tf)
        pf = pred_dir / tf.name
        if pf.exists():
            pred = load_result(pf)
        else:
            pred = {"dimensions": []}
            score.missing.append(tf.name)
        one = Score()
        for s in (score, one):
            s.add(pred["dimensions"], truth["dimensions"])
            s.add_other(pred, truth)
        score.per_drawing[tf.stem] = one.row()
    return score
