"""The result schema emits exactly the contract, checked against its JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from dimflow.grammar import parse
from dimflow.schema import (
    DatumSymbol,
    Dimension,
    DrawingResult,
    FeatureControlFrame,
    ImageSize,
    SurfaceFinish,
    TextItem,
    TitleBlock,
    drawing_id,
    json_schema,
    validate_json,
)

from ..conftest import SHARED


def _result() -> DrawingResult:
    dims = [
        Dimension(id="d1", bbox=(812.0, 340.5, 901.0, 372.0), confidence=0.94, **parse("Ø12 H7").fields()),
        Dimension(id="d2", bbox=(10, 10, 50, 30), confidence=0.88, **parse("4x M6x1").fields()),
    ]
    return DrawingResult(
        drawing_id=drawing_id(b"drawing"),
        source="s3://drawings/in/part-17.png",
        image=ImageSize(width=2480, height=1754),
        models={"detector": "drawing-detector/7"},
        dimensions=dims,
        texts=[TextItem(text="MATERIAL: AL 6061-T6", bbox=(1, 2, 3, 4), confidence=0.9)],
        timings_ms={"detect": 41.0},
    )


def test_emitted_json_validates_and_matches_contract_example() -> None:
    doc = json.loads(_result().to_json())
    validate_json(doc)
    assert doc["schema_version"] == "1"
    assert doc["dimensions"][0] | {} == {
        "id": "d1",
        "text": "Ø12 H7",
        "kind": "diameter",
        "nominal": 12.0,
        "unit": "mm",
        "upper": None,
        "lower": None,
        "fit": "H7",
        "count": 1,
        "bbox": [812.0, 340.5, 901.0, 372.0],
        "confidence": 0.94,
    }
    assert doc["dimensions"][1]["count"] == 4 and doc["dimensions"][1]["kind"] == "thread"


def test_to_json_sorts_keys_so_equal_results_are_equal_bytes() -> None:
    doc = _result().to_json()
    assert doc.index('"dimensions"') < doc.index('"drawing_id"') < doc.index('"image"') < doc.index('"models"')


def test_content_hash_ignores_timings_and_nothing_else() -> None:
    """Results are stored under this hash: a rerun that only took longer is the same result."""
    a, b = _result(), _result()
    b.timings_ms = {"detect": 999.0, "read_cached": 3.0}
    assert a.content_hash() == b.content_hash() and a.to_json() != b.to_json()
    for change in (
        lambda r: setattr(r.dimensions[0], "confidence", 0.95),
        lambda r: setattr(r.dimensions[1], "bbox", (10, 10, 50, 31)),
        lambda r: setattr(r, "models", {"detector": "drawing-detector/8"}),
        lambda r: r.texts.pop(),
    ):
        c = _result()
        change(c)
        assert c.content_hash() != a.content_hash()
    assert len(a.content_hash()) == 64 and a.timings_ms == {"detect": 41.0}  # hashing leaves the result as it was


def test_schema_rejects_what_the_contract_forbids() -> None:
    doc = json.loads(_result().to_json())
    doc["dimensions"][0]["kind"] = "length"
    with pytest.raises(jsonschema.ValidationError):
        validate_json(doc)
    with pytest.raises(ValidationError):
        Dimension(
            text="x",
            kind="linear",
            nominal=1,
            unit="mm",
            upper=None,
            lower=None,
            fit=None,
            count=0,
            bbox=(0, 0, 1, 1),
            confidence=0.5,
        )
    with pytest.raises(ValidationError):
        DrawingResult(drawing_id="not-a-hash", image=ImageSize(width=1, height=1))


@pytest.mark.skipif(not (SHARED / "contracts").is_dir(), reason="../shared is not beside this checkout")
def test_shipped_schema_copy_equals_shared_contract() -> None:
    shared = json.loads((SHARED / "contracts" / "drawing-result.schema.json").read_text())
    assert json_schema() == shared


def test_other_characteristics_are_always_written_and_validate() -> None:
    """The contract's optional keys are present (empty) on every result, and filled ones validate."""
    empty = json.loads(_result().to_json())
    assert (empty["gdt"], empty["datums"], empty["surface_finish"], empty["title_block"]) == ([], [], [], None)
    filled = _result()
    filled.gdt = [
        FeatureControlFrame(text="⌖ Ø0.3 M A B C", characteristic="position", tolerance=0.3, zone="diameter",
                            modifiers=["M"], datums=["A", "B", "C"], bbox=(1, 2, 30, 12), confidence=0.8)
    ]  # fmt: skip
    filled.datums = [DatumSymbol(label="A", bbox=(5, 5, 9, 9), confidence=0.9)]
    filled.surface_finish = [SurfaceFinish(text="Ra 1.6", parameter="Ra", value=1.6, bbox=(3, 3, 8, 8))]
    filled.title_block = TitleBlock(fields={"material": "AL 6061-T6", "scale": "1:2"})
    doc = json.loads(filled.to_json())
    validate_json(doc)
    assert doc["gdt"][0]["datums"] == ["A", "B", "C"] and "unit" not in doc["gdt"][0]
    assert doc["surface_finish"][0]["unit"] == "um"
    assert doc["title_block"] == {"fields": {"material": "AL 6061-T6", "scale": "1:2"}}
    doc["gdt"][0]["characteristic"] = "roundness"  # not an ISO 1101 / ASME name
    with pytest.raises(jsonschema.ValidationError):
        validate_json(doc)


def test_inch_dimensions_are_in_the_contract() -> None:
    doc = json.loads(_result().to_json())
    doc["dimensions"][0]["unit"] = "in"
    validate_json(doc)
    doc["dimensions"][0]["unit"] = "inch"
    with pytest.raises(jsonschema.ValidationError):
        validate_json(doc)
