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
    """cad=True draws its marks after everything else and picks its look from a stream of its own:
    where the look keeps the drawing's lettering and the ISO title block, the CAD sheet is the plain
    one plus its marks (the plain files are pinned in test_synth)."""
    from dimflow.synth.cad_sheet import look_rng, pick_look
    from dimflow.synth.generate import generate

    kept = 0
    for i in range(8):
        look = pick_look(look_rng(1234, i, 0))
        plain, cad = generate(1234, i, degrade_share=0.0), generate(1234, i, degrade_share=0.0, cad=True)
        assert plain.annotations is None and cad.annotations is not None
        if look.font is None and not look.sw_title_block:
            kept += 1
            texts = [t.string for t in cad.scene.texts]
            assert [t.string for t in plain.scene.texts] == texts[: len(plain.scene.texts)]
    assert kept >= 1


def _sheet_with(seed: int, want) -> tuple:
    from dimflow.synth.cad_sheet import look_rng, pick_look
    from dimflow.synth.generate import generate

    for i in range(40):
        look = pick_look(look_rng(seed, i, 0))
        d = generate(seed, i, degrade_share=0.0, cad=True)
        if want(look) and (not look.revision_table or any(t.string == "REVISIONS" for t in d.scene.texts)):
            return d
    raise AssertionError("no such sheet in 40")


def _table_box(sheet: SheetReading, dpi: float) -> tuple[float, float, float, float]:
    """Around the revision table (at most 25 mm tall: five rows of 5 mm)."""
    heads = [b for t, b in sheet.texts if t in ("REVISIONS", "ZONE", "APPROVED")]
    top = min(b[1] for b in heads) - 5
    return (min(b[0] for b in heads) - 5, top, max(b[2] for b in heads) + 5, top + 26 * dpi / 25.4)


def test_the_solidworks_template_and_a_revision_table() -> None:
    """The SOLIDWORKS block: who drew it and when come from the sign-off row's cells, a revision
    value beside its label in one cell is read; a revision table's zones (`C2`), dates and names are
    text, never dimensions, even when the detector took the table for the title block."""
    from dimflow.synth.dataset import pdf_truth
    from dimflow.synth.pdf import scene_pdf

    d = _sheet_with(5151, lambda lk: lk.sw_title_block and lk.revision_table)
    pdf = scene_pdf(d.scene)
    page = load_pages(pdf, "s.pdf")[0]
    runs = page_text(pdf, 0, page.dpi)
    plain = read_sheet(runs, page.gray)
    assert any(t == "REVISIONS" for t, _ in plain.texts), "the sheet has no revision table"
    table = _table_box(plain, page.dpi)
    truth = pdf_truth(d, pdf, dpi=page.dpi).model_dump()["dimensions"]
    for hint in (None, table):  # the detector's title-block box on the revision table instead
        sheet = read_sheet(runs, page.gray, title_hint=hint)
        assert sheet.title_block is not None and sheet.title_block.fields == d.title_fields
        assert {"drawn_by", "date"} <= set(d.title_fields)
        s = Score()
        s.add(_as_result(sheet)["dimensions"], truth)
        assert s.full_tp == s.n_truth == s.n_pred, [c.text for c in sheet.callouts]
        assert not [c.text for c in sheet.callouts if table[0] <= c.box[0] and c.box[2] <= table[2]
                    and table[1] <= c.box[1] and c.box[3] <= table[3]]  # fmt: skip


def test_on_ocr_pages_a_callout_in_a_revision_table_is_its_text() -> None:
    """The OCR path: a detector box read as a callout inside a revision table (found by its header
    row, read as text) becomes text; callouts elsewhere stay callouts."""
    from dimflow.grammar import GrammarError, parse
    from dimflow.records import Box, Reading
    from dimflow.stages import _outside_tables
    from dimflow.synth.pdf import scene_pdf

    d = _sheet_with(5151, lambda lk: lk.revision_table)
    pdf = scene_pdf(d.scene)
    page = load_pages(pdf, "s.pdf")[0]
    runs = page_text(pdf, 0, page.dpi)
    table = _table_box(read_sheet(runs, page.gray), page.dpi)

    def cls(text: str) -> int:
        try:
            parse(text)
            return 0
        except GrammarError:
            return 1

    items = [Reading(box=Box(cls(r.text), *r.box, 0.9), raw=r.text, confidence=0.9) for r in runs if r.angle == 0]
    out = _outside_tables(page.gray, items)
    assert len(out) == len(items)
    in_table = [table[0] <= r.box.x0 and r.box.x1 <= table[2] and table[1] <= r.box.y0 <= table[3]
                for r in items]  # fmt: skip
    flipped = [a.box.cls == 0 and b.box.cls == 1 for a, b in zip(items, out, strict=True)]
    assert any(flipped) and all(t for t, f in zip(in_table, flipped, strict=True) if f)
    kept = [b for a, b, t in zip(items, out, in_table, strict=True) if not t]
    assert [r.box.cls for r in kept] == [a.box.cls for a, t in zip(items, in_table, strict=True) if not t]


def test_the_title_block_grows_over_its_unlabelled_cells_and_no_further() -> None:
    """A block found from its labels' cells takes in the cells that share its lines (a part number
    beside it, a name row above it), not a view's outline above it nor a zone mark's band."""
    import cv2

    from dimflow.textlayer import grow_block

    g = np.full((1000, 1400), 255, np.uint8)
    cv2.rectangle(g, (20, 20), (1380, 980), 0, 2)  # the border; its zone band is the outer 9% / 5%
    cv2.rectangle(g, (700, 700), (1200, 940), 0, 2)  # the block: two rows of two cells, and one more row
    for y in (780, 860):
        cv2.line(g, (700, y), (1200, y), 0, 2)
    cv2.line(g, (950, 700), (950, 940), 0, 2)
    cv2.rectangle(g, (500, 860), (700, 940), 0, 2)  # an unlabelled cell beside the block's last row
    cv2.rectangle(g, (700, 200), (1200, 700), 0, 2)  # a view's outline sitting on the block
    labels = (700.0, 780.0, 1200.0, 940.0)  # the labels' cells: the lower two rows
    part_number = (540.0, 890.0, 660.0, 910.0)
    top_row = (760.0, 730.0, 880.0, 750.0)
    in_the_view = (900.0, 440.0, 1000.0, 460.0)
    got = grow_block(labels, [part_number, top_row, in_the_view], g < 200)
    assert got[0] <= 502 and got[1] <= 702  # the part number's cell and the top row
    assert got[1] > 650  # not the view
