"""Importing a labelled real set: LabelMe folders and COCO files land in one layout that reads as
the same truth; a bad label stops the import and leaves what was imported before untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dimflow import labelme
from dimflow.realset import import_labelled

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


def _coco_from(real: Path, folder: Path) -> Path:
    """The shipped LabelMe labels written as one COCO file (how another labelling tool exports them)."""
    names = list(labelme.CATEGORIES)
    coco = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for i, n in enumerate(names)]}
    for image_id, label in enumerate(sorted((real / "labels").glob("*.json"))):
        doc = json.loads(label.read_text())
        pdf = next(p for p in real.iterdir() if p.stem == label.stem and p.suffix.lower() == ".pdf")
        shutil.copy(pdf, folder / pdf.name)
        coco["images"].append({"id": image_id, "file_name": pdf.name, "width": doc["imageWidth"],
                               "height": doc["imageHeight"], "dimflow": doc.get("dimflow", {})})  # fmt: skip
        for s in doc["shapes"]:
            (x0, y0), (x1, y1) = s["points"]
            coco["annotations"].append({"id": len(coco["annotations"]), "image_id": image_id,
                                        "category_id": names.index(s["label"]), "bbox": [x0, y0, x1 - x0, y1 - y0],
                                        "attributes": {"text": s["description"], **s["attributes"]}})  # fmt: skip
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def _truths(folder: Path) -> dict[str, dict]:
    return {p.stem: labelme.load(p) for p in sorted((folder / "labels").glob("*.json"))}


def test_labelme_and_coco_import_to_the_same_truth(tmp_path: Path) -> None:
    a = import_labelled(REAL, tmp_path / "a")
    (tmp_path / "coco").mkdir()
    b = import_labelled(_coco_from(REAL, tmp_path / "coco"), tmp_path / "b")
    assert a.drawings == b.drawings == sorted(p.stem for p in (REAL / "labels").glob("*.json"))
    assert a.shapes == b.shapes and a.shapes["dimension"] >= 25
    ta, tb = _truths(tmp_path / "a"), _truths(tmp_path / "b")
    for name in ta:
        assert [d["nominal"] for d in ta[name]["dimensions"]] == [d["nominal"] for d in tb[name]["dimensions"]]
        boxes = [[v for d in t[name]["dimensions"] for v in d["bbox"]] for t in (ta, tb)]
        assert boxes[0] == pytest.approx(boxes[1], abs=0.11)  # COCO's w/h round-trip, LabelMe's 0.1 px
        assert (tmp_path / "a" / f"{name}.pdf").read_bytes() == (REAL / f"{name}.PDF").read_bytes()


def test_a_bad_label_stops_the_import_and_keeps_the_previous_set(tmp_path: Path) -> None:
    out = tmp_path / "real"
    import_labelled(REAL, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "bad"
    shutil.copytree(REAL, bad)
    label = next((bad / "labels").glob("*.json"))
    doc = json.loads(label.read_text())
    del doc["shapes"][0]["attributes"]["nominal"]
    label.write_text(json.dumps(doc))
    with pytest.raises(labelme.LabelError, match="nominal"):
        import_labelled(bad, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_a_label_without_its_drawing_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "labels").mkdir(parents=True)
    doc = labelme.document("../missing.pdf", 100, 100, [labelme.shape("datum", (1, 1, 5, 5), "A")])
    (src / "labels" / "missing.json").write_text(json.dumps(doc))
    with pytest.raises(labelme.LabelError, match="no drawing"):
        import_labelled(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()
