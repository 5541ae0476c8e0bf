"""Shadow evaluation's arithmetic: which pages are sampled, how two results are compared field by
field, and how records add up per (champion set, challenger set) pair."""

from __future__ import annotations

import json

import pytest

from dimflow.grammar import parse
from dimflow.schema import Dimension, DrawingResult, ImageSize
from dimflow.shadow import FIELDS, compare, pair_key, picked, record, summarize
from dimflow.storage import LocalStorage


def _result(*dims: tuple[str, tuple[float, float, float, float]]) -> DrawingResult:
    return DrawingResult(drawing_id="a" * 64, source="p.png", image=ImageSize(width=500, height=500), models={},
                         dimensions=[Dimension(id=f"d{i}", bbox=box, confidence=0.9, **parse(text).fields())
                                     for i, (text, box) in enumerate(dims, 1)])  # fmt: skip


def test_the_sample_is_a_share_of_pages_by_content_and_stable() -> None:
    ids = [f"{i:064x}" for i in range(4000)]
    got = [picked(d, 1, 0.1) for d in ids]
    assert 0.08 < sum(got) / len(got) < 0.12
    assert got == [picked(d, 1, 0.1) for d in ids]  # the same page is always in or out
    assert not any(picked(d, 1, 0.0) for d in ids[:100]) and all(picked(d, 1, 1.0) for d in ids[:100])


def test_fields_are_compared_on_dimensions_matched_by_box() -> None:
    champ = _result(("Ø12 H7", (10, 10, 60, 30)), ("25", (100, 100, 140, 120)), ("R5", (300, 300, 330, 320)))
    chall = _result(("Ø12 H8", (11, 10, 61, 31)), ("25", (100, 101, 140, 121)), ("40", (400, 10, 440, 30)))
    a = compare(champ, chall)
    assert (a["champion_dimensions"], a["challenger_dimensions"], a["matched"]) == (3, 3, 2)
    assert a["same"]["nominal"] == 2 and a["same"]["fit"] == 1 and a["same"]["text"] == 1 and a["same"]["kind"] == 2


def test_identical_results_agree_everywhere() -> None:
    r = _result(("Ø12 H7", (10, 10, 60, 30)), ("2x 45°", (100, 100, 140, 120)))
    a = compare(r, r)
    assert a["matched"] == 2 and all(a["same"][f] == 2 for f in FIELDS)


def test_records_add_up_per_pair(tmp_path) -> None:
    champ = _result(("25", (0, 0, 40, 20)), ("30", (50, 0, 90, 20)))
    chall = _result(("25", (0, 0, 40, 20)), ("80", (50, 0, 90, 20)))
    one, two = {"reader": "callout-reader/1"}, {"reader": "callout-reader/2"}
    recs = [record("pages/x.png", one, two, compare(champ, chall)),
            record("pages/y.png", one, two, compare(champ, champ)),
            record("pages/z.png", one, {"reader": "callout-reader/3"}, compare(champ, champ))]  # fmt: skip
    store = LocalStorage(tmp_path)
    for i, raw in enumerate(recs):
        store.put(f"shadow/{pair_key(one, json.loads(raw)['challenger'])}/{i}.json", raw)
        store.put(f"shadow/{pair_key(one, json.loads(raw)['challenger'])}/{i}.json", raw)  # again: stored once
    (top, other) = summarize([store.get(k) for k in store.keys("shadow")])
    assert (top.pages, top.matched, top.challenger) == (2, 4, two) and other.pages == 1
    assert top.field_agreement()["nominal"] == pytest.approx(3 / 4) and top.detection_agreement == 1.0
    assert store.keys("nothing-here") == []
