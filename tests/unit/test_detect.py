"""Detector helpers that need no trained model: box matching, letterbox, NMS, weight halving."""

from __future__ import annotations

import numpy as np

from dimflow.detect.model import Box, letterbox, nms
from dimflow.detect.train import match_boxes


def _box(x0: float, y0: float, x1: float, y1: float, score: float = 0.9) -> Box:
    return Box(0, x0, y0, x1, y1, score)


def test_match_boxes_counts_one_to_one_hits_at_iou_half() -> None:
    truth = [(0, 0, 10, 10), (20, 0, 30, 10)]
    assert match_boxes([_box(0, 0, 10, 10), _box(21, 0, 31, 10)], truth) == 2
    # a duplicate of the same truth box is a false positive, not a second hit
    assert match_boxes([_box(0, 0, 10, 10), _box(0, 0, 10, 9)], truth) == 1
    # IoU below the threshold does not count
    assert match_boxes([_box(5, 0, 15, 10)], truth) == 0
    assert match_boxes([_box(5, 0, 15, 10)], truth, min_iou=0.3) == 1


def test_match_boxes_prefers_the_confident_box() -> None:
    truth = [(0, 0, 10, 10)]
    assert match_boxes([_box(0, 0, 10, 10, 0.3), _box(1, 0, 10, 10, 0.95)], truth) == 1


def test_letterbox_keeps_the_aspect_and_pads_to_multiples_of_32() -> None:
    gray = np.full((2339, 3307), 255, np.uint8)
    img, s, (left, top) = letterbox(gray, 1600)
    assert img.shape[1] == 1600 and img.shape[0] % 32 == 0 and img.shape[0] < 1200
    assert abs(s - 1600 / 3307) < 1e-9 and left == 0 and top >= 0


def test_nms_drops_overlapping_lower_scores() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    assert sorted(keep.tolist()) == [0, 2]


def test_detector_size_grows_with_the_sheet_when_its_dpi_is_known() -> None:
    from dimflow.detect.model import Detector, DetectorConfig

    det = Detector.__new__(Detector)  # size_for needs only the config, not an ONNX session
    det.cfg = DetectorConfig()
    assert det.size_for((2339, 3307), None) == 1600  # unknown scale: the trained size
    assert det.size_for((2339, 3307), 200) == 1600  # A3
    assert det.size_for((1654, 2339), 200) == 1600  # A4: never below the trained size
    a1 = det.size_for((4677, 6622), 200)
    assert 3200 <= a1 <= 3264 and a1 % 32 == 0
    assert det.size_for((9933, 14043), 300) == 4544  # A0
    assert det.size_for((14043, 19866), 300) == 4800  # 2A0: capped


def test_windows_keep_the_drawing_scale_and_clip_boxes(tmp_path) -> None:
    """A window is cut at the detector's scale (nothing resized); a box mostly inside stays, clipped
    and renormalised to the window; one mostly outside is dropped; rarer classes get windows first."""
    import cv2
    import numpy as np

    from dimflow.detect.data import window_split

    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    img = np.full((400, 1000), 255, np.uint8)
    img[100:120, 700:760] = 0  # a frame (class 3), drawn dark so its pixels can be found again
    cv2.imwrite(str(tmp_path / "images" / "train" / "d.png"), img)
    lines = ["3 0.730000 0.275000 0.060000 0.050000",  # the frame: 700..760 x 100..120
             "0 0.050000 0.950000 0.060000 0.050000"]  # a dimension far away in the corner
    (tmp_path / "labels" / "train" / "d.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "win"
    assert window_split(tmp_path, "train", out, 256, 1, seed=0) == 1
    crop = cv2.imread(str(out / "images" / "train" / "d-w0.png"), cv2.IMREAD_GRAYSCALE)
    assert crop.shape == (256, 256)
    (label,) = (out / "labels" / "train" / "d-w0.txt").read_text().split("\n")[:1]
    c, cx, cy, w, h = label.split()
    assert c == "3" and abs(float(w) * 256 - 60) < 0.5 and abs(float(h) * 256 - 20) < 0.5
    ys, xs = np.nonzero(crop < 128)
    assert abs(xs.mean() - float(cx) * 256) < 1 and abs(ys.mean() - float(cy) * 256) < 1
    assert len((out / "labels" / "train" / "d-w0.txt").read_text().split()) == 5  # the far dimension is not in it
