"""Stage helpers that need no model: reading repair and carrying boxes onto a turned sheet."""

from __future__ import annotations

import numpy as np
import pytest

from dimflow.grammar import GrammarError, parse
from dimflow.records import Box, Reading
from dimflow.stages import interpret, turn_box

BOX = Box(0, 100, 100, 140, 115, 0.9)


@pytest.mark.parametrize(
    ("raw", "text", "repaired"),
    [
        ("R6", "R6", False),
        ("(25.5)", "(25.5)", False),  # a reference dimension keeps its brackets
        ("R6)", "R6", True),  # a stray bracket from the leader
        ("77 +0.2/-0.1/", "77 +0.2/-0.1", True),
        ("M3x0.5-6H-", "M3x0.5-6H", True),
        ("(Ø12", "Ø12", True),
        ("25.|", "25", True),  # several debris characters trimmed one by one
        ("Ø12) H7", "Ø12 H7", True),  # an unbalanced bracket inside, not at an edge
        (")(30)", "(30)", True),  # only the extra bracket goes: the reference's own stay
        ("((30)", "(30)", True),
    ],
)
def test_interpret_trims_ocr_debris_and_says_so(raw: str, text: str, repaired: bool) -> None:
    r = interpret(BOX, raw, 0.9)
    assert r.fields is not None and r.fields.text == text
    assert r.repaired is repaired and r.raw == raw and r.confidence == 0.9
    if repaired:  # a repaired reading keeps why the raw string failed
        with pytest.raises(GrammarError) as refused:
            parse(raw)
        assert r.error == str(refused.value)
    else:
        assert r.error is None


def test_interpret_leaves_text_that_is_no_dimension() -> None:
    r = interpret(BOX, "SECTION A-A", 0.9)
    assert r.fields is None and r.error and not r.repaired


def test_readings_round_trip_through_json() -> None:
    r = interpret(BOX, "Ø20 H7/g6", 0.8)
    back = Reading.model_validate_json(r.model_dump_json())
    assert back == r and back.box == BOX and back.fields.fit == "H7/g6"


@pytest.mark.parametrize("turn", [0, 1, 2, 3])
def test_turn_box_follows_np_rot90(turn: int) -> None:
    page = np.zeros((60, 100), np.uint8)
    page[10:20, 30:50] = 255  # a box x 30..50, y 10..20
    turned = np.rot90(page, turn)
    ys, xs = np.nonzero(turned)
    moved = turn_box(Box(0, 30, 10, 50, 20, 1.0), turn, page.shape)
    assert (moved.x0, moved.y0, moved.x1, moved.y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


# ---------------------------------------------------------------- where a drawing comes from


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (300, 200), 255).save(buf, format="PNG")
    return buf.getvalue()


def test_a_drawing_is_fetched_from_the_store_by_key_or_from_a_path(tmp_path) -> None:
    from dimflow.inputs import Limits
    from dimflow.stages import fetch
    from dimflow.storage import LocalStorage

    store = LocalStorage(tmp_path / "store")
    store.put("uploads/ab12/part-17.png", _png())
    assert fetch("store:uploads/ab12/part-17.png", store, Limits()) == ("part-17.png", _png())
    (tmp_path / "sheet.png").write_bytes(_png())
    assert fetch(str(tmp_path / "sheet.png"), store, Limits()) == ("sheet.png", _png())


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("store:uploads/ab12/absent.png", "missing"),
        ("store:../../etc/passwd", "missing"),  # the store refuses keys that leave it
        ("store:", "missing"),
        ("store:uploads/ab12/part-17.png", "too_large"),  # 1 kB limit: refused from its size alone
    ],
)
def test_a_stored_drawing_that_is_missing_or_too_large_is_refused_before_it_is_read(
    tmp_path, monkeypatch: pytest.MonkeyPatch, source: str, reason: str
) -> None:
    from dimflow.inputs import BadInput, Limits
    from dimflow.stages import fetch
    from dimflow.storage import LocalStorage

    store = LocalStorage(tmp_path / "store")
    store.put("uploads/ab12/part-17.png", _png() + b"\0" * 2000)

    def no_reads(key: str) -> bytes:
        raise AssertionError(f"read {key} although it was to be refused")

    monkeypatch.setattr(store, "get", no_reads)
    with pytest.raises(BadInput) as refused:
        fetch(source, store, Limits(max_bytes=1000))
    assert refused.value.reason == reason


def _png_of(im) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def test_a_gray_png_is_stored_as_sent_and_anything_else_as_its_decoded_gray(tmp_path) -> None:
    """The stored page always decodes to the pixels the models saw; a plain 8-bit gray PNG is that
    already, so it is kept byte for byte rather than encoded again."""
    import io

    from PIL import Image

    from dimflow import inputs, stages
    from dimflow.storage import storage_from_url

    rng = np.random.default_rng(3)
    gray = np.where(rng.random((300, 400)) < 0.05, 0, 255).astype(np.uint8)
    store = storage_from_url(str(tmp_path / "store"))
    rgb = Image.fromarray(np.stack([gray] * 3, axis=-1))
    la = Image.fromarray(np.stack([gray, np.full_like(gray, 128)], axis=-1), mode="LA")
    turned = Image.fromarray(gray)
    exif = turned.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    turned.save(buf, format="PNG", exif=exif.tobytes())
    for name, data, kept in [("gray.png", _png_of(Image.fromarray(gray)), True), ("rgb.png", _png_of(rgb), False),
                             ("alpha.png", _png_of(la), False), ("turned.png", buf.getvalue(), False)]:  # fmt: skip
        (tmp_path / name).write_bytes(data)
        (ref,) = stages.load(str(tmp_path / name), store, inputs.Limits())
        stored = store.get(ref.key)
        assert (stored == data) is kept, name
        expected = inputs.load_pages(data, name)[0].gray
        assert np.array_equal(stages.page_pixels(store, ref), expected), name


@pytest.mark.parametrize(
    ("raw", "conf", "text"),
    [
        ("SCALE 1 : 2", 0.95, True),  # a word no callout has
        ("DETAIL F", 1.0, True),
        ("ZONE", 0.99, True),  # no digit: a heading, a datum letter
        ("A", 0.98, True),
        ("D2", 0.99, True),  # a zone or table cell
        ("SCALE 1 : 2", 0.8, False),  # the engine unsure: the callout reader's reading stands
        ("R6", 1.0, False),  # the grammar takes it: a callout
        ("6x 017", 0.94, False),  # Ø read as 0: no letters, so no verdict
        ("O2", 0.99, False),  # O or Q is how Ø reads: never a table cell
        ("4x 014 THRU", 0.95, False),  # a callout's own words
        ("0,15 B", 0.91, False),
        ("", 0.99, False),
    ],
)
def test_the_text_engines_reading_makes_a_doubted_callout_text(raw: str, conf: float, text: bool) -> None:
    from dimflow.stages import not_a_callout

    assert not_a_callout(raw, conf) is text


def test_only_a_doubted_callout_is_read_again_and_a_label_becomes_text() -> None:
    """The wiring: the callout reader's confident reading stands unasked; the doubted one is read by
    the text engine beside the general texts, in one batch, and turns text when that reading is a label."""
    from types import SimpleNamespace

    from dimflow.records import Detections
    from dimflow.stages import _read_ocr

    label, callout, note = Box(0, 20, 20, 220, 50, 0.9), Box(0, 20, 100, 80, 130, 0.9), Box(1, 20, 200, 200, 230, 0.9)
    asked: list[list[tuple[int, ...]]] = []

    class Reader:
        def read(self, crops):
            return [("5/0.11", 0.6), ("25", 0.97)]

    class Engine:
        def read(self, crops):
            asked.append([c.shape for c in crops])
            return [("BREAK ALL EDGES", 0.95), ("SCALE 1 : 1", 0.97)][: len(crops)]

    models = SimpleNamespace(reader=Reader(), text_engine=Engine())
    gray = np.full((300, 300), 255, np.uint8)
    (got,) = _read_ocr(models, [gray], [Detections(boxes=[label, callout, note])])
    assert len(asked) == 1 and len(asked[0]) == 2  # the note and the doubted callout, together
    by_text = {r.raw: (r.box.cls, r.fields is not None) for r in got.items}
    assert by_text == {"SCALE 1 : 1": (1, False), "25": (0, True), "BREAK ALL EDGES": (1, False)}
