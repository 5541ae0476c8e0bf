"""The scorer follows the contract's rule and punishes every kind of mistake."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from dimflow.evaluate import ScoreInputError, boxes_match, score_dirs


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
    next(iter(sorted(pred.glob("*.json")))).unlink()
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_f1 < 1.0 and len(s.missing) == 1


def test_wrong_nominal_or_kind_breaks_the_value_match(synth_dir: Path, tmp_path: Path) -> None:
    pred = _copy_truth(synth_dir, tmp_path / "pred")

    def alter(doc: dict) -> None:
        doc["dimensions"][0]["nominal"] += 0.01
        doc["dimensions"][1]["kind"] = "radius" if doc["dimensions"][1]["kind"] != "radius" else "linear"

    _edit(pred, alter)
    s = score_dirs(pred, synth_dir / "truth")
    assert s.value_f1 < 1.0 and s.full_f1 <= s.value_f1


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
    with pytest.raises(ScoreInputError, match="contract"):
        score_dirs(pred, synth_dir / "truth")


def test_cli_prints_table_and_summary_last(synth_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(synth_dir / "truth"), str(synth_dir / "truth")])
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("value_f1=1.000 full_f1=1.000 n_truth=")
    assert "linear" in result.stdout
    bad = runner.invoke(app, ["eval", str(tmp_path / "nope"), str(synth_dir / "truth")])
    assert bad.exit_code == 2 and "not a folder" in bad.output
