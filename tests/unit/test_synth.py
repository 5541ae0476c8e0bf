"""Synthetic drawings: deterministic, and their truth agrees with their pixels."""

from __future__ import annotations

import hashlib
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dimflow.evaluate import KINDS
from dimflow.grammar import parse
from dimflow.schema import drawing_id, validate_json
from dimflow.synth.dataset import write_dataset
from dimflow.synth.scene import StrokeClass


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path: Path, synth_dir: Path) -> None:
    again = tmp_path / "again"
    write_dataset(again, n=8, seed=7, degrade_share=0.5)
    assert _digest(again) == _digest(synth_dir)


def test_other_seed_gives_other_drawings(tmp_path: Path, synth_dir: Path) -> None:
    other = tmp_path / "other"
    write_dataset(other, n=2, seed=8, degrade_share=0.5)
    a = (synth_dir / "images").glob("*.png")
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in (other / "images").glob("*.png")}.isdisjoint(
        {hashlib.sha256(p.read_bytes()).hexdigest() for p in a}
    )


def _truths(folder: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted((folder / "truth").glob("*.json"))]


def test_truth_follows_contract_and_names_its_image(synth_dir: Path) -> None:
    truths = _truths(synth_dir)
    assert len(truths) == 8
    for path, doc in truths:
        validate_json(doc)
        image = synth_dir / "images" / f"{path.stem}.png"
        assert doc["drawing_id"] == drawing_id(image.read_bytes())
        with Image.open(image) as im:
            assert (doc["image"]["width"], doc["image"]["height"]) == im.size
        assert 5 <= len(doc["dimensions"]) <= 20


def test_every_truth_text_parses_to_its_fields(synth_dir: Path) -> None:
    for _, doc in _truths(synth_dir):
        for dim in doc["dimensions"]:
            fields = {k: dim[k] for k in ("text", "kind", "nominal", "unit", "upper", "lower", "fit", "count")}
            assert parse(dim["text"]).fields() == fields


def test_boxes_hold_ink_and_callouts_do_not_overlap_or_get_crossed(synth_dir: Path) -> None:
    for path, doc in _truths(synth_dir):
        ink = (
            np.asarray(Image.open(synth_dir / "images" / f"{path.stem}.png").convert("L")) < 160
        )  # dimensions may be gray
        labels = np.asarray(Image.open(synth_dir / "segmentation" / f"{path.stem}.png"))
        boxes = [d["bbox"] for d in doc["dimensions"]]
        for x0, y0, x1, y1 in boxes:
            region = (slice(int(y0), int(np.ceil(y1))), slice(int(x0), int(np.ceil(x1))))
            assert ink[region].mean() > 0.03, f"{path.name}: box {x0, y0, x1, y1} holds no ink"
            other = np.isin(labels[region], [StrokeClass.CONTOUR, StrokeClass.DIMENSION, StrokeClass.OTHER])
            assert other.mean() < 0.01, f"{path.name}: a line crosses the text in {x0, y0, x1, y1}"
        for a, b in combinations(boxes, 2):
            overlap = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            assert overlap == 0, f"{path.name}: callout boxes {a} and {b} overlap"


def test_yolo_labels_and_crops(synth_dir: Path) -> None:
    for path, doc in _truths(synth_dir):
        rows = [line.split() for line in (synth_dir / "labels" / f"{path.stem}.txt").read_text().splitlines()]
        classes = [int(r[0]) for r in rows]
        assert classes.count(0) == len(doc["dimensions"])
        assert classes.count(2) == 1  # the title block
        assert all(0.0 <= float(v) <= 1.0 for r in rows for v in r[1:])
    index = [json.loads(line) for line in (synth_dir / "crops" / "index.jsonl").read_text().splitlines()]
    dims = [c for c in index if c["kind"] == "dimension"]
    assert len(dims) == sum(len(d["dimensions"]) for _, d in _truths(synth_dir))
    assert any(c["rotation"] == 90 for c in dims), "no vertical (rotated) callouts were drawn"
    for c in dims[:20]:
        assert (synth_dir / "crops" / c["crop"]).is_file()
        parse(c["text"])


def test_segmentation_has_every_class(synth_dir: Path) -> None:
    seen: set[int] = set()
    for p in (synth_dir / "segmentation").glob("*.png"):
        seen |= set(np.unique(np.asarray(Image.open(p))).tolist())
    assert seen >= {int(c) for c in StrokeClass}


@pytest.mark.slow
def test_fifty_drawings_cover_every_kind_and_format(tmp_path: Path) -> None:
    write_dataset(tmp_path, n=30, seed=1)
    dims = [d for p in sorted((tmp_path / "truth").glob("*.json")) for d in json.loads(p.read_text())["dimensions"]]
    assert {d["kind"] for d in dims} == set(KINDS)
    texts = [d["text"] for d in dims]
    assert any("±" in t for t in texts)
    assert any(d["fit"] for d in dims)
    assert any(d["count"] > 1 for d in dims)
    assert any(t.startswith("(") for t in texts)
    assert any(
        d["upper"] == 0.0 and d["lower"] and "/" in t and "+" not in t and "-" not in t
        for d, t in zip(dims, texts, strict=True)
    )
    assert any("+" in t and "/" in t for t in texts)
    metas = [json.loads(p.read_text()) for p in (tmp_path / "meta").glob("*.json")]
    assert {m["sheet"] for m in metas} == {"A3", "A4", "A4P"}
    assert len({m["font"] for m in metas}) >= 3
    assert any(m["degradation"]["jpeg_quality"] or m["degradation"]["blur"] for m in metas)


def test_a_cad_set_boxes_frames_datums_and_finishes_and_exports_vector_pdfs(tmp_path: Path) -> None:
    """`dimflow synth --cad --pdf`: YOLO labels with the three extra classes, truth carrying the
    frames, datums, finishes and title-block fields, and vector PDFs whose truth is in their pixels;
    the same seed gives the same bytes."""
    from dimflow.inputs import load_pages
    from dimflow.pdftext import page_text
    from dimflow.synth.dataset import YOLO_CLASSES_CAD, write_dataset

    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        write_dataset(out, n=3, seed=77, degrade_share=0.0, cad=True, pdf=True)
    same = [p.relative_to(a) for p in a.rglob("*") if p.is_file()]
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in same)
    assert "5: surface_finish" in (a / "data.yaml").read_text() and len(YOLO_CLASSES_CAD) == 6
    classes = {int(line.split()[0]) for f in (a / "labels").glob("*.txt") for line in f.read_text().splitlines()}
    assert {0, 1, 2, 3, 4} <= classes
    truths = [json.loads(p.read_text()) for p in sorted((a / "truth-pdf").glob("*.json"))]
    assert sum(len(t["gdt"]) for t in truths) > 0 and sum(len(t["datums"]) for t in truths) > 0
    assert all(t["title_block"]["fields"].get("drawing_number") for t in truths)
    for t in truths:
        validate_json(t)
    pdf = sorted((a / "pdf").glob("*.pdf"))[0]
    page = load_pages(pdf.read_bytes(), pdf.name)[0]
    truth = truths[0]
    assert (page.gray.shape[1], page.gray.shape[0]) == (truth["image"]["width"], truth["image"]["height"])
    runs = page_text(pdf.read_bytes(), 0, page.dpi)
    assert runs and any(r.text.replace(",", ".") in {d["text"] for d in truth["dimensions"]} for r in runs)


def test_a_mixed_split_is_cad_style_for_its_share_spread_evenly_and_the_rest_as_plain(tmp_path) -> None:
    """The gate split is half CAD-style (params.yaml): those sheets carry frames, datums and
    roughness marks; the others are byte for byte the plain split's drawings of the same seed."""
    import json

    from dimflow.synth.dataset import is_cad, write_dataset

    assert [is_cad(i, 0.5) for i in range(4)] == [False, True, False, True]
    assert not any(is_cad(i, 0.0) for i in range(10)) and all(is_cad(i, 1.0) for i in range(10))
    write_dataset(tmp_path / "mixed", n=4, seed=77, cad_share=0.5)
    write_dataset(tmp_path / "plain", n=4, seed=77)
    mixed = sorted((tmp_path / "mixed" / "truth").glob("*.json"))
    plain = sorted((tmp_path / "plain" / "truth").glob("*.json"))
    marks = [sum(len(json.loads(p.read_text()).get(k) or []) for k in ("gdt", "datums", "surface_finish"))
             for p in mixed]  # fmt: skip
    assert [p.name for p in plain] == [p.name for p in mixed]
    same = [(tmp_path / "plain" / "images" / f"{p.stem}.png").read_bytes()
            == (tmp_path / "mixed" / "images" / f"{p.stem}.png").read_bytes() for p in mixed]  # fmt: skip
    assert same == [True, False, True, False] and [m > 0 for m in marks] == [False, True, False, True]
    assert "gdt" in (tmp_path / "mixed" / "data.yaml").read_text()


def test_plain_drawings_are_the_ones_the_dvc_tracked_splits_hold(tmp_path: Path) -> None:
    """CAD-only choices come from a stream of their own: the plain generator's files stay byte for
    byte what they were (the train, val and test splits in dvc.lock are made of them). A change
    here re-labels the training data: update dvc.lock with it, deliberately."""
    write_dataset(tmp_path, n=4, seed=77)
    h = hashlib.sha256()
    for p in sorted(tmp_path.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(tmp_path)).encode())
            h.update(p.read_bytes())
    assert h.hexdigest() == "46e7a45bde20dc551ee87fed5e74ecf0135052f6e78ac8bb4b27dcd070954191"


def test_cad_sheets_look_like_cad_exports() -> None:
    """What the real SOLIDWORKS sheets have: the template's title block (tolerance block, sign-off
    rows), revision tables, section and detail labels, Century-Gothic-like lettering, contours as
    thin as dimension lines, short hidden dashes and 1-bit scans. None of that text is a
    dimension, and the title block's texts lie in its region."""
    from dimflow.pdftext import page_text
    from dimflow.synth.cad_sheet import SHORT_HIDDEN, look_rng, pick_look
    from dimflow.synth.generate import generate
    from dimflow.synth.pdf import scene_pdf

    seen: dict[str, int] = {}
    for i in range(24):
        look = pick_look(look_rng(606, i, 0))
        d = generate(606, i, cad=True)
        strings = {t.string: t for t in d.scene.texts}
        region = dict(d.scene.regions)["title_block"]
        tb = [t for t in d.scene.texts if t.role == "title_block"]
        assert tb and all(
            region[0] - 0.01 <= t.rect[0] and t.rect[2] <= region[2] + 0.01 and region[1] - 0.01 <= t.rect[1]
            and t.rect[3] <= region[3] + 0.01 for t in tb
        )  # fmt: skip
        if any(s.startswith("UNLESS OTHERWISE SPECIFIED:") for s in strings):
            seen["sw_block"] = seen.get("sw_block", 0) + 1
            assert {"title", "drawing_number", "scale", "sheet"} <= set(d.title_fields)
            assert strings[f"SCALE:{d.title_fields['scale']}"].role == "title_block"
        if "REVISIONS" in strings:
            seen["revisions"] = seen.get("revisions", 0) + 1
            assert strings["REVISIONS"].role == "text" and strings["REVISIONS"].callout is None
        labels = [t for t in d.scene.texts if t.string.startswith(("SECTION ", "DETAIL ")) and "\nSCALE " in t.string]
        seen["view_labels"] = seen.get("view_labels", 0) + len(labels)
        assert all(t.callout is None and t.role == "text" for t in labels)
        if d.font == "adventor":
            seen["adventor"] = seen.get("adventor", 0) + 1
        if d.degradation.scan_threshold:
            seen["scan"] = seen.get("scan", 0) + 1
            assert set(np.unique(np.asarray(d.rendered.image)).tolist()) <= {0, 255}
        contours = [s for s in d.scene.strokes if s.cls == StrokeClass.CONTOUR]
        if look.thin_contours and contours:
            seen["thin"] = seen.get("thin", 0) + 1
            assert max(s.width for s in contours) <= look.thin_contours
        if any(s.pattern == SHORT_HIDDEN for s in d.scene.strokes):
            seen["short_hidden"] = seen.get("short_hidden", 0) + 1
    assert set(seen) >= {"sw_block", "revisions", "view_labels", "adventor", "scan", "thin", "short_hidden"}, seen
    # the Century Gothic look-alike embeds in a vector PDF and reads back from its text layer
    sheet = next(d for d in (generate(606, i, cad=True) for i in range(24))
                 if d.font == "adventor" and "units" in d.title_fields)  # fmt: skip
    texts = [r.text for r in page_text(scene_pdf(sheet.scene), 0, 100)]
    assert "DO NOT SCALE DRAWING" in texts and f"SCALE:{sheet.title_fields['scale']}" in texts
    assert sheet.title_fields["title"] in texts
