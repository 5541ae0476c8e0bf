"""Behaviour of the shipped baseline models on drawings they never saw (a seed no split uses)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dimflow.lifecycle import get_kind
from dimflow.registry import checksums, verify
from dimflow.settings import get_settings
from dimflow.synth.dataset import write_dataset

BASELINE_DIR = get_settings().baseline_dir

pytestmark = pytest.mark.model


def _shipped(key: str) -> Path:
    folder = BASELINE_DIR / key
    if not (folder / "checksums.json").is_file():
        pytest.skip(f"no shipped {key} baseline in {folder}")
    return folder


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unseen")
    write_dataset(out, n=4, seed=4242)
    return out


@pytest.mark.parametrize("key", ["segmenter", "reader", "detector"])
def test_shipped_files_match_their_checksums(key: str) -> None:
    folder = _shipped(key)
    expected = json.loads((folder / "checksums.json").read_text())
    verify(folder, expected)
    assert set(expected) == set(checksums(folder)) - {"README.md"}


def test_segmenter_classifies_unseen_strokes(unseen: Path) -> None:
    kind = get_kind("segmenter")
    metrics = kind.evaluate(kind.load(_shipped("segmenter")), unseen)
    assert metrics["accuracy"] >= 0.93, metrics
    assert min(metrics[f"recall_{c}"] for c in ("contour", "dimension", "text", "other")) >= 0.75, metrics


def test_reader_reads_unseen_callouts(unseen: Path) -> None:
    kind = get_kind("reader")
    metrics = kind.evaluate(kind.load(_shipped("reader")), unseen)
    assert metrics["exact_match"] >= 0.85, metrics


def test_reader_reads_unseen_cad_style_callouts(tmp_path: Path) -> None:
    """Century Gothic lettering, colour inks printed gray, 1-bit scans: the CAD export look, on a seed no split uses."""
    write_dataset(tmp_path, n=6, seed=4343, cad=True)
    kind = get_kind("reader")
    metrics = kind.evaluate(kind.load(_shipped("reader")), tmp_path)
    assert metrics["n_crops"] >= 40 and metrics["exact_match"] >= 0.95, metrics  # 0.957 (0.936 at a fixed ink level)


def test_reader_is_invariant_to_a_quarter_turn(unseen: Path) -> None:
    """A callout read upright and the same crop turned 90° counter-clockwise read the same."""
    from dimflow.read.train import load_crops

    reader = get_kind("reader").load(_shipped("reader"))
    samples = [s for s in load_crops(unseen) if s.image.shape[1] > 1.5 * s.image.shape[0]][:12]
    upright = [t for t, _ in reader.read([s.image for s in samples])]
    turned = [t for t, _ in reader.read([np.rot90(s.image).copy() for s in samples])]
    agree = np.mean([a == b for a, b in zip(upright, turned, strict=True)])
    assert agree >= 0.9, list(zip(upright, turned, strict=True))


def test_detector_finds_unseen_callouts(unseen: Path) -> None:
    kind = get_kind("detector")
    metrics = kind.evaluate(kind.load(_shipped("detector")), unseen)
    assert metrics["recall"] >= 0.93 and metrics["precision"] >= 0.93, metrics
    assert metrics["text_recall"] >= 0.9, metrics


def test_detector_onnx_agrees_with_its_pytorch_weights(unseen: Path) -> None:
    """The shipped ONNX (fp16-stored weights, our letterbox and NMS) finds what ultralytics finds."""
    import cv2

    from dimflow.detect.yolo_env import offline
    from dimflow.evaluate import iou

    offline()
    from ultralytics import YOLO

    folder = _shipped("detector")
    detector = get_kind("detector").load(folder)
    gray = cv2.imread(str(sorted((unseen / "images").glob("*.png"))[0]), cv2.IMREAD_GRAYSCALE)
    ours = [b for b in detector.detect(gray) if b.cls == 0]
    res = YOLO(str(folder / "detector.pt")).predict(
        cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR),
        imgsz=detector.cfg.imgsz,
        conf=detector.cfg.conf,
        device="cpu",
        verbose=False,
    )[0]
    theirs = res.boxes.xyxy.numpy()[res.boxes.cls.numpy() == 0]
    assert len(ours) >= 3 and abs(len(ours) - len(theirs)) <= 1
    matched = [max(iou([b.x0, b.y0, b.x1, b.y1], list(t)) for t in theirs) for b in ours]
    assert np.median(matched) >= 0.85, matched


def test_detector_keeps_finding_callouts_on_a_large_sheet(unseen: Path) -> None:
    """The same drawing content placed on a sheet twice as large (A1-like): with the page's dpi
    the detector looks at it larger and still finds the callouts."""
    import cv2

    from dimflow.detect.train import match_boxes

    detector = get_kind("detector").load(_shipped("detector"))
    stem = sorted((unseen / "images").glob("*.png"))[0].stem
    gray = cv2.imread(str(unseen / "images" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    dpi = json.loads((unseen / "meta" / f"{stem}.json").read_text())["dpi"]
    truth = json.loads((unseen / "truth" / f"{stem}.json").read_text())["dimensions"]
    h, w = gray.shape
    canvas = np.full((2 * h, 2 * w), 255, np.uint8)
    canvas[h // 2 : h // 2 + h, w // 2 : w // 2 + w] = gray
    boxes = [
        (d["bbox"][0] + w // 2, d["bbox"][1] + h // 2, d["bbox"][2] + w // 2, d["bbox"][3] + h // 2) for d in truth
    ]
    found = [b for b in detector.detect(canvas, dpi) if b.cls == 0]
    assert match_boxes(found, boxes) / len(boxes) >= 0.9
    assert detector.size_for(canvas.shape, dpi) > detector.cfg.imgsz


@pytest.mark.parametrize("turn", [1, 3])
def test_a_sheet_scanned_sideways_is_read_upright(unseen: Path, turn: int) -> None:
    """The same drawing turned a quarter either way: the pipeline notices, reads it upright and
    reports boxes on the turned page; the dimensions agree with those of the upright sheet."""
    import cv2

    from dimflow import stages

    stem = sorted((unseen / "images").glob("*.png"))[1].stem
    gray = cv2.imread(str(unseen / "images" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    models = _models()
    upright = stages.process_page(models, gray, stages.loose_page(gray))
    turned_page = np.ascontiguousarray(np.rot90(gray, turn))
    assert stages.detect(models, turned_page).turn == turn
    turned = stages.process_page(models, turned_page, stages.loose_page(turned_page))
    assert stages.detect(models, gray).turn == 0
    from dimflow.evaluate import iou

    want = [(d.text, _box(d.bbox, turn, gray.shape)) for d in upright.dimensions]
    got = [(d.text, list(d.bbox)) for d in turned.dimensions]
    same = sum(any(t == u and iou(list(b), c) >= 0.5 for u, c in got) for t, b in want)
    assert same >= 0.8 * len(want) and len(want) >= 3, (want, got)


def _box(bbox, turn: int, shape) -> tuple[float, ...]:
    from dimflow.records import Box
    from dimflow.stages import turn_box

    b = turn_box(Box(0, *bbox, 1.0), turn, shape)
    return (b.x0, b.y0, b.x1, b.y1)


def _models():
    from dimflow.champions import models_from

    for key in ("detector", "reader", "segmenter"):
        _shipped(key)  # skips when a model is not shipped
    return models_from(BASELINE_DIR)


def test_a_raster_cad_sheet_gives_frames_datums_finishes_and_title_block_by_ocr() -> None:
    """CAD-style sheets as rasters (no text layer): frames and datum boxes are found from their
    drawn lines, roughness values read again, the title block's fields read by OCR; none of them
    is a dimension."""
    from dimflow import stages
    from dimflow.champions import models_from
    from dimflow.evaluate import Score
    from dimflow.synth.dataset import truth_result
    from dimflow.synth.generate import generate

    for key in ("detector", "reader", "segmenter"):
        _shipped(key)
    models = models_from(BASELINE_DIR)
    score, fields_right, fields_all = Score(), 0, 0
    for i in range(3):
        d = generate(5555, i, degrade_share=0.0, cad=True)
        gray = np.array(d.rendered.image.convert("L"))
        result = stages.process_page(models, gray, stages.loose_page(gray, "cad.png", float(d.dpi)))
        truth = truth_result(d, b"x", None).model_dump()
        pred = json.loads(result.to_json())
        score.add(pred["dimensions"], truth["dimensions"])
        score.add_other(pred, truth)
        got = (pred.get("title_block") or {}).get("fields", {})
        fields_all += len(d.title_fields)
        fields_right += sum(got.get(k) == v for k, v in d.title_fields.items())
        assert pred["text_source"] == "ocr"
    assert score.value_f1 >= 0.85, score.summary_line()
    assert score.misfiled <= 2
    assert score.other["gdt"]["tp"] >= 0.5 * score.other["gdt"]["truth"] > 0
    assert score.other["surface_finish"]["tp"] == score.other["surface_finish"]["truth"]
    assert fields_right >= 0.6 * fields_all


def test_the_gate_scores_the_labelled_real_sheets() -> None:
    """The retrain gate's real-sheet figures for the shipped models: the text layer reads all 25
    labelled dimensions; read as rasters through OCR the same sheets score far lower (0.29 measured
    when this test was written: the gap issue 11 has open), a floor that catches a regression."""
    from dimflow.gate import real_score

    models = _models()
    real = Path(__file__).resolve().parents[2] / "samples" / "real"
    text = real_score(models, real, text_layer=True)
    assert text.n_truth == 25 and text.value_f1 >= 0.96, text.row()
    ocr = real_score(models, real, text_layer=False)
    assert ocr.n_truth == 25 and ocr.value_f1 >= 0.2, ocr.row()


def test_widening_the_shipped_detector_keeps_what_it_finds_and_adds_the_new_classes(tmp_path: Path) -> None:
    """Fine-tuning toward frames, datums and roughness marks starts from a model that already finds
    dimensions, text and title blocks exactly as the shipped one does."""
    import torch

    from dimflow.detect.model import CLASSES
    from dimflow.detect.train import widen_head
    from dimflow.detect.yolo_env import offline

    offline()
    from ultralytics import YOLO

    shipped = BASELINE_DIR / "detector" / "detector.pt"
    if not shipped.is_file():
        pytest.skip("no shipped detector weights")
    wide = widen_head(shipped, tmp_path / "init.pt")
    old, new = YOLO(str(shipped)).model.float().eval(), YOLO(str(wide)).model.float().eval()
    assert new.names == dict(enumerate(CLASSES)) and new.nc == len(CLASSES) > old.nc
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = old(x)[0], new(x)[0]
    assert torch.allclose(a, b[:, : 4 + old.nc], rtol=1e-4, atol=1e-4)  # boxes and the known classes' scores
    assert b[:, 4 + old.nc :].max() < 0.1  # the new classes start from the prior, not from noise
    assert widen_head(wide, tmp_path / "again.pt") == wide  # already wide: used as it is
