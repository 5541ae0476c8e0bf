"""The text-layer reader on the real dev set (every characteristic, nothing misfiled), on synthetic
CAD-style PDFs it never saw (written and stroked diameter signs), and on hostile runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dimflow.evaluate import Score
from dimflow.inputs import load_pages
from dimflow.labelme import load
from dimflow.pdftext import TextRun, page_text
from dimflow.textlayer import SheetReading, read_sheet

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


def _as_result(sheet: SheetReading) -> dict:
    dims = [{**c.fields.model_dump(), "bbox": list(c.box), "confidence": 1.0} for c in sheet.callouts if c.fields]
    return {"dimensions": dims, "gdt": [g.model_dump() for g in sheet.gdt],
            "datums": [d.model_dump() for d in sheet.datums],
            "surface_finish": [f.model_dump() for f in sheet.surface_finish]}  # fmt: skip


@pytest.mark.parametrize("stem", ["Aufspannung", "Aufspannung_Ecke", "Elevator_bottom"])
def test_the_real_sheets_every_characteristic(stem: str) -> None:
    data = (REAL / f"{stem}.PDF").read_bytes()
    page = load_pages(data, f"{stem}.PDF")[0]
    sheet = read_sheet(page_text(data, 0, page.dpi), page.gray)
    truth = load(REAL / "labels" / f"{stem}.json")
    pred = _as_result(sheet)
    s = Score()
    s.add(pred["dimensions"], truth["dimensions"])
    s.add_other(pred, truth)
    assert s.full_tp == s.n_truth == s.n_pred, [c.text for c in sheet.callouts]
    assert s.misfiled == 0
    for key, c in s.other.items():
        assert c["full"] == c["truth"] == c["pred"], (key, c)
    assert sheet.title_block is not None
    want = truth["title_block"]["fields"]
    assert {k: sheet.title_block.fields.get(k) for k in want} == want


def test_synthetic_cad_pdfs_it_never_saw() -> None:
    """Four sheets of a seed used nowhere else, exported as vector PDFs, half with the diameter sign stroked."""
    from dimflow.synth.dataset import pdf_truth
    from dimflow.synth.generate import generate
    from dimflow.synth.pdf import scene_pdf

    s = Score()
    for i in range(4):
        d = generate(60606, i, degrade_share=0.0)
        pdf = scene_pdf(d.scene, draw_diameter=i % 2 == 0)
        page = load_pages(pdf, "s.pdf")[0]
        sheet = read_sheet(page_text(pdf, 0, page.dpi), page.gray)
        s.add(_as_result(sheet)["dimensions"], pdf_truth(d, pdf, dpi=page.dpi).model_dump()["dimensions"])
        assert sheet.title_block is not None and sheet.title_block.fields.get("sheet")
    assert s.n_truth >= 20
    assert s.value_f1 >= 0.95 and s.full_f1 >= 0.95, s.summary_line()


def test_hostile_runs_are_text_not_crashes() -> None:
    gray = np.full((400, 300), 255, np.uint8)
    runs = [
        TextRun("12.5", (-50.0, -40.0, -10.0, -20.0), 0, 0.0, 20.0),  # off the page
        TextRun("Ø8", (10.0, 390.0, 900.0, 1200.0), 90, 90.0, 890.0),  # absurd box
        TextRun("+", (100.0, 100.0, 100.0, 100.0), 0, 0.0, 0.0),  # zero size
        TextRun("R", (100.0, 100.0, 110.0, 120.0), 0, 33.3, 0.0),  # tilted, no size
        TextRun("\u202e5.0", (150.0, 150.0, 190.0, 170.0), 0, 0.0, 20.0),  # bidi control
        TextRun("SCALE 1:2", (20.0, 20.0, 120.0, 40.0), 0, 0.0, 20.0),
    ]
    sheet = read_sheet(runs, gray)
    found = {t for t, _ in sheet.texts} | {c.text for c in sheet.callouts}
    assert "SCALE 1:2" in found and sheet.gdt == [] and sheet.datums == []
    assert read_sheet([], gray).callouts == []


def test_synthetic_cad_sheets_frames_datums_finishes_and_title_block() -> None:
    """CAD-style synthetic sheets (generate(..., cad=True)) of a seed used nowhere else: the frames,
    datums and roughness values are found and none is a dimension; the title block's fields read."""
    from dimflow.synth.dataset import pdf_truth
    from dimflow.synth.generate import generate
    from dimflow.synth.pdf import scene_pdf

    s = Score()
    fields_right = fields_all = 0
    for i in range(4):
        d = generate(60607, i, degrade_share=0.0, cad=True)
        pdf = scene_pdf(d.scene, draw_diameter=i % 2 == 1)
        page = load_pages(pdf, "s.pdf")[0]
        sheet = read_sheet(page_text(pdf, 0, page.dpi), page.gray)
        t = pdf_truth(d, pdf, dpi=page.dpi).model_dump()
        pred = _as_result(sheet)
        s.add(pred["dimensions"], t["dimensions"])
        s.add_other(pred, t)
        fields_all += len(d.title_fields)
        fields_right += sum(sheet.title_block.fields.get(key) == v for key, v in d.title_fields.items())
    assert s.misfiled == 0 and s.value_f1 >= 0.95
    for key, c in s.other.items():
        assert c["truth"] > 0 and c["full"] >= 0.9 * c["truth"] and c["pred"] <= c["truth"] + 1, (key, c)
    assert fields_right >= 0.9 * fields_all


def test_a_plain_drawing_is_unchanged_by_the_cad_option() -> None:
    """cad=True draws after everything else: the dataset's drawings (cad=False) keep their content."""
    from dimflow.synth.generate import generate

    plain, cad = generate(1234, 3, degrade_share=0.0), generate(1234, 3, degrade_share=0.0, cad=True)
    assert [t.string for t in plain.scene.texts] == [t.string for t in cad.scene.texts][: len(plain.scene.texts)]
    assert plain.annotations is None and cad.annotations is not None
