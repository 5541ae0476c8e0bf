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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageSize(_Strict):
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class Dimension(_Strict):
    """One dimension callout: its normalised text, parsed fields, place and belief."""

    id: str | None = None
    text: str
    kind: Kind
    nominal: float
    unit: Literal["mm", "deg"]
    upper: float | None
    lower: float | None
    fit: str | None
    count: int = Field(ge=1)
    bbox: BBox
    confidence: float = Field(ge=0.0, le=1.0)


class TextItem(_Strict):
    """General text that is not a dimension (notes, title block)."""

    text: str
    bbox: BBox
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class DrawingResult(_Strict):
    schema_version: Literal["1"] = SCHEMA_VERSION
    drawing_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: str | None = None
    image: ImageSize
    models: dict[str, str] = Field(default_factory=dict)
    dimensions: list[Dimension] = Field(default_factory=list)
    texts: list[TextItem] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)

    def to_json(self) -> str:
        """Stable JSON (sorted keys): byte-identical for identical results."""
        data = self.model_dump(mode="json", exclude_none=False)
        for dim in data["dimensions"]:
            if dim.get("id") is None:
                dim.pop("id", None)
        for text in data["texts"]:
            if text.get("confidence") is None:
                text.pop("confidence", None)
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


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
