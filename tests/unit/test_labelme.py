"""LabelMe truth: the real dev set loads as the contract's lists; bad labels fail with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimflow.evaluate import Score, ScoreInputError, score_dirs
from dimflow.labelme import LabelError, document, load, shape, to_truth

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


def test_the_real_set_loads_with_every_kind_of_characteristic():
    sheets = {p.stem: load(p) for p in sorted((REAL / "labels").glob("*.json"))}
    assert set(sheets) == {"Aufspannung", "Aufspannung_Ecke", "Elevator_bottom"}
    assert sum(len(t["dimensions"]) for t in sheets.values()) == 25
    assert sum(len(t["gdt"]) for t in sheets.values()) == 10
    assert sum(len(t["datums"]) for t in sheets.values()) == 7
    assert [f["parameter"] for t in sheets.values() for f in t["surface_finish"]] == ["Ra"]
    ecke = sheets["Aufspannung_Ecke"]
    frame = next(g for g in ecke["gdt"] if g["count"] == 4)
    assert (frame["characteristic"], frame["tolerance"], frame["zone"]) == ("position", 0.14, "diameter")
    assert frame["datums"] == ["C", "E(M)"] and frame["modifiers"] == ["M"]
    assert all((REAL / Path(doc).name).exists() for doc in ("Aufspannung.PDF", "Elevator_bottom.PDF"))
    assert sheets["Elevator_bottom"]["title_block"]["fields"]["drawing_number"] == "Keyence_Lift-12.19"


def test_truth_scored_against_itself_is_perfect(tmp_path):
    """The labels as predictions (contract JSON) score 1.0 everywhere: the rules read both sides alike."""
    pred = tmp_path / "pred"
    pred.mkdir()
    for p in (REAL / "labels").glob("*.json"):
        t = load(p)
        doc = {"schema_version": "1", "drawing_id": "0" * 64, "image": t["image"], "models": {}, "texts": [],
               "timings_ms": {}, "dimensions": [{**d, "confidence": 1.0} for d in t["dimensions"]],
               "gdt": [{**g, "confidence": 1.0} for g in t["gdt"]], "datums": t["datums"],
               "surface_finish": t["surface_finish"], "title_block": t["title_block"]}  # fmt: skip
        (pred / p.name).write_text(json.dumps(doc, ensure_ascii=False))
    s = score_dirs(pred, REAL / "labels")
    assert s.value_f1 == s.full_f1 == s.detect_recall == s.detect_precision == 1.0
    assert s.misfiled == 0
    assert all(c["tp"] == c["full"] == c["truth"] == c["pred"] for c in s.other.values())
    assert set(s.per_drawing) == {"Aufspannung", "Aufspannung_Ecke", "Elevator_bottom"}


def test_a_frame_reported_as_a_dimension_is_misfiled():
    s = Score()
    truth = {"gdt": [{"characteristic": "flatness", "tolerance": 0.3, "bbox": [0, 0, 100, 40]}]}
    s.add_other({"dimensions": [{"bbox": [0, 0, 100, 40]}]}, truth)
    assert s.misfiled == 1 and s.other["gdt"]["tp"] == 0


def test_bad_labels_fail_with_the_reason(tmp_path):
    with pytest.raises(LabelError, match="kind, nominal"):
        to_truth(document("x.png", 10, 10, [shape("dimension", (0, 0, 5, 5), "12")]))
    with pytest.raises(LabelError, match="unknown category"):
        shape("balloon", (0, 0, 1, 1))
    circle = {**shape("datum", (0, 0, 5, 5), "A"), "shape_type": "circle"}
    with pytest.raises(LabelError, match="rectangles"):
        to_truth(document("x.png", 10, 10, [circle]))
    bad = tmp_path / "labels"
    bad.mkdir()
    (bad / "a.json").write_text(json.dumps(document("a.png", 10, 10, [shape("gdt", (0, 0, 5, 5), "x")])))
    with pytest.raises(ScoreInputError, match="characteristic and tolerance"):
        score_dirs(tmp_path, bad)
