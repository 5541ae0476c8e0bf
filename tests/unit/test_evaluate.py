"""The scorer follows the contract's rule and punishes every kind of mistake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from dimflow.evaluate import Score, ScoreInputError, boxes_match, full_match, iou, match, score_dirs, value_match


def _copy_truth(synth_dir: Path, dst: Path) -> Path:
    shutil.copytree(synth_dir / "truth", dst)
    return dst


def _edit(folder: Path, fn) -> None:
    for p in sorted(folder.glob("*.json")):
        doc = json.loads(p.read_text())
        fn(doc)
        p.write_text(json.dumps(doc, ensure_ascii=False))


def test_truth_against_itself_is_perfect(synth_dir: Path) -> None:
    s = score_dirs(synth_dir / "truth", synth_dir / "truth")
    assert s.value_f1 == 1.0 and s.full_f1 == 1.0
    assert s.n_truth == s.n_pred > 0


def test_dropping_predictions_lowers_both(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")
    _edit(pred, lambda d: d.update(dimensions=d["dimensions"][::2]))
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_f1 < 1.0 and s.full_f1 < 1.0
    assert s.n_pred < s.n_truth


def test_a_missing_prediction_file_counts_as_nothing_found(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")
    gone = next(iter(sorted(pred.glob("*.json"))))
    gone.unlink()
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_f1 < 1.0 and s.missing == [gone.name]


def test_wrong_nominal_or_kind_breaks_the_value_match(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")

    def alter(doc: dict) -> None:
        doc["dimensions"][0]["nominal"] += 0.01
        doc["dimensions"][1]["kind"] = "radius" if doc["dimensions"][1]["kind"] != "radius" else "linear"

    _edit(pred, alter)
    s = score_dirs(pred, synth_dir / "truth")
    n = len(list((synth_dir / "truth").glob("*.json")))  # two dimensions lost per drawing, both ways
    assert (s.value_tp, s.full_tp) == (s.n_truth - 2 * n, s.n_truth - 2 * n)


def test_wrong_tolerance_only_lowers_full_f1(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")

    def alter(doc: dict) -> None:
        doc["dimensions"][0]["upper"] = 9.9
        doc["dimensions"][1]["count"] += 1
        doc["dimensions"][2]["fit"] = "Z9"

    _edit(pred, alter)
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_f1 == 1.0 and s.full_f1 < 1.0


def test_boxes_elsewhere_do_not_match(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")
    _edit(pred, lambda d: [dim.update(bbox=[b + 5000 for b in dim["bbox"]]) for dim in d["dimensions"]])
    assert score_dirs(pred, synth_dir / "truth").value_f1 == 0.0


def test_duplicates_match_once(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")
    _edit(pred, lambda d: d.update(dimensions=d["dimensions"] + d["dimensions"]))
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_tp == s.n_truth and s.value_f1 < 1.0


def test_box_rule_centre_inside_or_iou() -> None:
    truth = [10.0, 10.0, 20.0, 20.0]
    assert boxes_match([0, 0, 16, 16], truth)  # centre inside
    assert not boxes_match([0, 0, 14, 14], truth)  # centre outside, IoU 0.16
    assert boxes_match([11, 11, 14.9, 30], [10, 10, 15, 30])  # IoU >= 0.3, centre inside too


def test_bad_inputs_are_named(tmp_path: Path, synth_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScoreInputError, match="no truth files"):
        score_dirs(synth_dir / "truth", tmp_path / "empty")
    pred = _copy_truth(synth_dir, tmp_path / "pred")
    first = sorted(pred.glob("*.json"))[0]
    first.write_text("{not json")
    with pytest.raises(ScoreInputError, match=first.name):
        score_dirs(pred, synth_dir / "truth")
    first.write_text(json.dumps({"schema_version": "2"}))
    with pytest.raises(ScoreInputError, match="contract") as err:
        score_dirs(pred, synth_dir / "truth")
    assert "is a required property" in str(err.value) and "Failed validating" not in str(err.value)  # short


def test_cli_prints_table_and_summary_last(synth_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(synth_dir / "truth"), str(synth_dir / "truth")])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("value_f1=1.000 full_f1=1.000 n_truth=")
    assert "linear" in result.stdout
    bad = runner.invoke(app, ["eval", str(tmp_path / "nope"), str(synth_dir / "truth")])
    assert bad.exit_code == 2 and "not a folder" in bad.output


# ---------------------------------------------------------------- each rule, by hand


def _dim(bbox=(0, 0, 10, 10), kind="linear", nominal=10.0, confidence=0.9, **fields) -> dict:
    base = {"text": "x", "kind": kind, "nominal": nominal, "unit": "mm", "upper": None, "lower": None, "fit": None,
            "count": 1, "bbox": list(bbox), "confidence": confidence}  # fmt: skip
    return base | fields


def test_iou_by_hand_on_boxes_that_are_not_square() -> None:
    a, b = [10, 20, 40, 30], [25, 22, 60, 50]  # 30 x 10 and 35 x 28, overlapping 15 x 8
    assert iou(a, b) == pytest.approx(120 / (300 + 980 - 120))
    assert iou(b, a) == pytest.approx(120 / 1160)
    assert iou([0, 0, 10, 10], [0, 20, 10, 30]) == 0.0  # side by side vertically: overlap in x only
    assert iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == 1.0  # boxes smaller than a pixel still compare


def test_iou_by_hand() -> None:
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [2, 2, 4, 4]) == pytest.approx(4 / 100)
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges
    assert iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert iou([5, 5, 5, 5], [5, 5, 5, 5]) == 0.0  # no area, no overlap


def test_an_iou_match_whose_truth_centre_lies_outside_the_prediction() -> None:
    pred = [0, 0, 10, 10]
    assert boxes_match(pred, [5, 0, 16, 10])  # centre (10.5, 5) outside; IoU 50/160 = 0.3125
    assert not boxes_match(pred, [5.5, 0, 16, 10])  # centre outside; IoU 45/160 = 0.28
    assert boxes_match(pred, [9, 9, 11, 11])  # centre (10, 10) on the corner; IoU 1/103
    assert not boxes_match(pred, [9, 9, 11.2, 11])  # centre (10.1, 10) just outside
    assert not boxes_match(pred, [-1.2, 9, 1, 11])  # centre (-0.1, 10) just outside on the left
    assert boxes_match(pred, [-1, -1, 1, 1])  # centre (0, 0) on the other corner
    assert not boxes_match(pred, [0, 9, 4, 13])  # centre (2, 11) below it; IoU 4/112
    assert boxes_match(pred, [4, 0, 20, 10])  # centre (12, 5) outside, IoU exactly 60/200 = 0.3
    assert boxes_match([0, 20, 30, 30], [2, 22, 6, 28])  # a wide box away from the origin, centre (4, 25)
    assert boxes_match([0, 0, 30, 10], [18, 4, 22, 6])  # centre (20, 5): inside the wide box


def test_value_match_needs_box_kind_and_nominal_within_1e6() -> None:
    truth = _dim()
    assert value_match(_dim(nominal=10.0000009), truth)
    assert not value_match(_dim(nominal=10.0000011), truth)
    assert not value_match(_dim(nominal=9.9999989), truth)
    assert not value_match(_dim(kind="diameter"), truth)
    assert not value_match(_dim(bbox=(20, 20, 30, 30)), truth)


@pytest.mark.parametrize(
    "change",
    [
        {"upper": 0.2},
        {"upper": None},
        {"lower": -0.2},
        {"lower": None},
        {"fit": None},
        {"fit": "h7"},
        {"count": 1},
    ],
)
def test_full_match_needs_each_field(change: dict) -> None:
    truth = _dim(upper=0.1, lower=-0.1, fit="H7", count=2)
    assert full_match(dict(truth), truth)
    assert full_match(truth | {"upper": 0.1000009, "lower": -0.1000009}, truth)  # within 1e-6
    assert value_match(truth | change, truth) and not full_match(truth | change, truth)


def test_differences_of_exactly_1e6_still_match() -> None:
    truth = _dim(nominal=0.0, upper=0.0)
    assert value_match(_dim(nominal=1e-6, upper=0.0), truth)
    assert full_match(_dim(nominal=0.0, upper=1e-6), truth)


def test_predictions_without_a_confidence_come_last() -> None:
    truths = [_dim()]
    unsure = {k: v for k, v in _dim().items() if k != "confidence"}
    assert match([unsure, _dim(confidence=0.5)], truths, value_match) == [(1, 0)]


def test_none_and_zero_are_different_tolerances() -> None:
    truth = _dim(upper=0.0, lower=None)
    assert not full_match(truth | {"upper": None}, truth)
    assert not full_match(truth | {"lower": 0.0}, truth)


def test_matching_is_one_to_one_and_most_confident_first() -> None:
    truths = [_dim()]
    preds = [_dim(confidence=0.2), _dim(bbox=(1, 1, 10, 10), confidence=0.9)]
    assert match(preds, truths, value_match) == [(1, 0)]
    two = [_dim(), _dim(bbox=(2, 2, 8, 8))]  # one prediction box covers both truth centres
    assert match([_dim()], two, value_match) == [(0, 0)]
    assert match([_dim(), _dim(confidence=0.1)], two, value_match) == [(0, 0), (1, 1)]
    assert match([_dim(confidence=1.0)], [], value_match) == []


def test_scores_by_hand() -> None:
    truths = [_dim(), _dim(bbox=(20, 0, 30, 10), upper=0.1, lower=-0.1), _dim(bbox=(40, 0, 50, 10), kind="radius")]
    preds = [_dim(), _dim(bbox=(20, 0, 30, 10), upper=0.2, lower=-0.1)]  # one full match, one value match
    s = Score()
    s.add(preds, truths)
    assert (s.n_truth, s.n_pred, s.value_tp, s.full_tp, s.drawings) == (3, 2, 2, 1, 1)
    assert s.value_f1 == pytest.approx(0.8)  # P 1, R 2/3
    assert s.full_f1 == pytest.approx(0.4)  # P 1/2, R 1/3
    assert (s.kind_truth["linear"], s.kind_value["linear"], s.kind_full["linear"]) == (2, 2, 1)
    assert (s.kind_truth["radius"], s.kind_value["radius"]) == (1, 0)
    s.add([], [_dim()])  # a second drawing where nothing was found: micro-averaged
    assert s.value_f1 == pytest.approx(2 * 1 * 0.5 / 1.5) and s.drawings == 2
    assert s.summary_line() == "value_f1=0.667 full_f1=0.333 n_truth=4 n_pred=2"


def test_f1_edge_cases() -> None:
    assert Score().value_f1 == 1.0  # nothing to find, nothing found
    empty_pred = Score()
    empty_pred.add([], [_dim()])
    assert empty_pred.value_f1 == 0.0
    only_wrong = Score()
    only_wrong.add([_dim(bbox=(50, 50, 60, 60))], [])
    assert only_wrong.value_f1 == 0.0


def test_calibration_bins_count_fully_right_predictions_by_confidence():
    s = Score()
    truth = [{"kind": "linear", "nominal": 10.0, "upper": None, "lower": None, "fit": None, "count": 1,
              "bbox": [0, 0, 10, 10]},
             {"kind": "linear", "nominal": 20.0, "upper": None, "lower": None, "fit": None, "count": 1,
              "bbox": [50, 0, 60, 10]}]  # fmt: skip
    preds = [dict(truth[0], confidence=0.97), dict(truth[1], nominal=21.0, confidence=0.92),
             dict(truth[1], confidence=0.3), dict(truth[0], bbox=[200, 200, 210, 210], confidence=1.0)]  # fmt: skip
    s.add(preds, truth)
    bins = {r["bin"]: r for r in s.calibration()}
    assert (bins["[0.95, 1.00]"]["n"], bins["[0.95, 1.00]"]["right"]) == (2, 1)  # 1.0 lands in the top bin
    assert (bins["[0.90, 0.95)"]["n"], bins["[0.90, 0.95)"]["right"]) == (1, 0)
    assert (bins["[0.00, 0.50)"]["n"], bins["[0.00, 0.50)"]["share"]) == (1, 1.0)
    assert bins["[0.50, 0.70)"]["share"] is None
