"""The result contract (`contracts/drawing-result.md`) as pydantic models.

Every result dimflow writes is built from these models and validated against the
JSON Schema shipped beside them, so a drift between code and contract fails loudly.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

Kind = Literal["linear", "diameter", "radius", "angular", "thread", "chamfer"]
BBox = tuple[float, float, float, float]
Characteristic = Literal[
    "straightness", "flatness", "circularity", "cylindricity", "profile_of_a_line", "profile_of_a_surface",
    "angularity", "perpendicularity", "parallelism", "position", "concentricity", "symmetry",
    "circular_runout", "total_runout",
]  # fmt: skip
Modifier = Literal["M", "L", "F", "P", "T", "U", "S", "CZ", "ST", "E"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageSize(_Strict):
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class CalloutFields(_Strict):
    """What a dimension callout says, as the grammar parses it (`Callout.fields()`)."""

    text: str
    kind: Kind
    nominal: float
    unit: Literal["mm", "deg", "in"]
    upper: float | None
    lower: float | None
    fit: str | None
    count: int = Field(ge=1)


class Dimension(CalloutFields):
    """One dimension callout: its normalised text, parsed fields, place and belief."""

    id: str | None = None
    bbox: BBox
    confidence: float = Field(ge=0.0, le=1.0)


class TextItem(_Strict):
    """General text that is not a dimension (notes, title block)."""

    text: str
    bbox: BBox
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class FeatureControlFrame(_Strict):
    """One row of a GD&T feature control frame: never a dimension."""

    id: str | None = None
    text: str
    characteristic: Characteristic
    tolerance: float = Field(ge=0.0)
    unit: Literal["mm", "in"] | None = None
    zone: Literal["width", "diameter", "spherical_diameter"]
    modifiers: list[Modifier] = Field(default_factory=list)
    datums: list[str] = Field(default_factory=list)
    count: int = Field(default=1, ge=1)
    bbox: BBox
    confidence: float = Field(ge=0.0, le=1.0)


class DatumSymbol(_Strict):
    label: str
    bbox: BBox
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class SurfaceFinish(_Strict):
    text: str
    parameter: Literal["Ra", "Rz", "Rmax", "Rt", "N"]
    value: float = Field(ge=0.0)
    unit: Literal["um", "uin"] = "um"
    bbox: BBox
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class TitleBlock(_Strict):
    bbox: BBox | None = None
    fields: dict[str, str | None] = Field(default_factory=dict)


class DrawingResult(_Strict):
    schema_version: Literal["1"] = SCHEMA_VERSION
    drawing_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: str | None = None
    image: ImageSize
    models: dict[str, str] = Field(default_factory=dict)
    dimensions: list[Dimension] = Field(default_factory=list)
    texts: list[TextItem] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    # the contract's other characteristics: always written, empty until the readers learn them
    gdt: list[FeatureControlFrame] = Field(default_factory=list)
    datums: list[DatumSymbol] = Field(default_factory=list)
    surface_finish: list[SurfaceFinish] = Field(default_factory=list)
    title_block: TitleBlock | None = None
    # beyond the contract (which allows added fields): how the page's text was read, the PDF's text
    # layer ("pdf_text": exact strings) or OCR ("ocr": scans, rasters, PDFs without one)
    text_source: Literal["ocr", "pdf_text"] | None = None

    def to_json(self) -> str:
        """Stable JSON (sorted keys): byte-identical for identical results."""
        data = self.model_dump(mode="json", exclude_none=False)
        for dim in data["dimensions"]:
            if dim.get("id") is None:
                dim.pop("id", None)
        for item in data["texts"] + data["gdt"] + data["datums"] + data["surface_finish"]:
            for optional in ("id", "confidence", "unit"):
                if optional in item and item[optional] is None:
                    item.pop(optional)
        if data["title_block"] is not None and data["title_block"].get("bbox") is None:
            data["title_block"].pop("bbox", None)
        if data["text_source"] is None:
            data.pop("text_source")
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"

    def content_hash(self) -> str:
        """sha256 of what the result says, without how long it took: reruns that find the same
        things hash the same, so storage keyed on it stores a result once."""
        return hashlib.sha256(self.model_copy(update={"timings_ms": {}}).to_json().encode()).hexdigest()


def drawing_id(data: bytes) -> str:
    """The contract's drawing id: sha256 hex of the input file's bytes."""
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=1)
def json_schema() -> dict:
    """The contract's JSON Schema, as shipped in the package."""
    text = resources.files("dimflow.contracts").joinpath("drawing-result.schema.json").read_text()
    return json.loads(text)


def validate_json(document: dict) -> None:
    """Raise `jsonschema.ValidationError` unless `document` follows the contract."""
    import jsonschema

    jsonschema.Draft202012Validator(json_schema()).validate(document)
