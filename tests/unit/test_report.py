"""What is stored for a page: the three files under a content-addressed prefix, written once."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from dimflow.grammar import parse
from dimflow.records import PageRef
from dimflow.report import inspection_csv, persist, result_prefix
from dimflow.schema import Dimension, DrawingResult, ImageSize, validate_json
from dimflow.storage import LocalStorage, StorageConflict

PAGE = PageRef(drawing_id="a" * 64, source="part.png", page=2, n_pages=2, key="pages/x.png", dpi=None, width=200,
               height=100)  # fmt: skip
GRAY = np.full((100, 200), 255, np.uint8)


def _result(timings: dict[str, float] | None = None, nominal: str = "Ø12 H7") -> DrawingResult:
    dim = Dimension(id="d1", bbox=(20.0, 30.0, 60.0, 45.0), confidence=0.42, **parse(nominal).fields())
    return DrawingResult(drawing_id="a" * 64, source="part.png", image=ImageSize(width=200, height=100),
                         models={"detector": "drawing-detector/1", "reader": "callout-reader/3"},
                         dimensions=[dim], timings_ms=timings or {"detect": 10.0})  # fmt: skip


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_result_is_stored_once_under_its_content(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    first = persist(store, PAGE, _result({"detect": 10.0}), GRAY)
    assert first.written and first.n_dimensions == 1
    prefix = result_prefix(PAGE, _result())
    assert prefix.startswith(f"results/{'a' * 64}/p2-") and first.objects["json"] == f"{prefix}/result.json"
    validate_json(json.loads(store.get(first.objects["json"])))
    before = _files(tmp_path)
    again = persist(store, PAGE, _result({"detect": 99.0, "read_cached": 1.0}), GRAY)  # only slower
    assert not again.written and again.objects == first.objects and again.timings_ms == {"detect": 10.0}
    assert _files(tmp_path) == before
    other = persist(store, PAGE, _result(nominal="Ø12 H8"), GRAY)  # says something else: stored beside
    assert other.written and other.objects["json"] != first.objects["json"] and len(_files(tmp_path)) == 6


def test_a_concurrent_identical_result_is_kept_and_a_different_one_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStorage(tmp_path)
    persist(store, PAGE, _result({"detect": 10.0}), GRAY)
    monkeypatch.setattr(store, "exists", lambda key: False)  # as if the other run wrote it after we looked
    raced = persist(store, PAGE, _result({"detect": 12.0}), GRAY)
    assert not raced.written and raced.timings_ms == {"detect": 10.0}
    json_key = raced.objects["json"]
    (tmp_path / json_key).unlink()
    store.put(json_key, _result(nominal="Ø12 H8").to_json().encode())  # another result under this key
    with pytest.raises(StorageConflict):
        persist(store, PAGE, _result({"detect": 12.0}), GRAY)


def test_the_inspection_table_has_a_row_per_balloon() -> None:
    rows = list(csv.reader(io.StringIO(inspection_csv(_result()).decode())))
    assert rows[0][:4] == ["balloon", "id", "text", "kind"]
    assert rows[1] == ["1", "d1", "Ø12 H7", "diameter", "12.0", "mm", "", "", "H7", "1", "0.42", "20.0 30.0 60.0 45.0"]


def test_the_ballooned_png_keeps_the_drawing_and_colours_by_confidence() -> None:
    from PIL import Image

    from dimflow.report import balloon_png

    gray = np.tile(np.linspace(0, 255, 200).astype(np.uint8), (100, 1))  # every gray level
    low, high = _result(), _result()
    high.dimensions[0].confidence = 0.95
    for result, colour in ((low, (230, 120, 0)), (high, (0, 90, 200))):
        img = np.asarray(Image.open(io.BytesIO(balloon_png(gray, result))).convert("RGB")).astype(int)
        assert img.shape == (100, 200, 3)
        assert (np.abs(img[90, :, 0] - gray[90]) <= 1).all()  # far from the balloon: the drawing's grays
        colours = {tuple(p) for p in img.reshape(-1, 3)}
        assert colour in colours and ({(0, 90, 200), (230, 120, 0)} - {colour}).isdisjoint(colours)
