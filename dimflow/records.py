"""What travels between processing stages: typed records with their own (de)serialisation.

A stage's output is stored by Prefect (cached results) and handed to the next task, so every
record is a pydantic model: validated when it is read back, small (boxes and strokes, never
pixels), and the same object whether a stage ran now or was served from cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dimflow.schema import CalloutFields, DatumSymbol, FeatureControlFrame, SurfaceFinish, TitleBlock

# the detector's box classes, in its label order; the last three are what a detector trained on
# CAD-style sets (`dimflow synth --cad`) also boxes (the shipped one knows the first three)
CLASSES = ("dimension", "text", "title_block", "gdt", "datum", "surface_finish")
STROKE_CLASSES = ("contour", "dimension", "text", "other")  # the segmenter's stroke classes
STAGES = ("detect", "read", "segment")  # the model stages a result's timings report


@dataclass(frozen=True)
class Box:
    """A detected box in the page's own pixels: class index into `CLASSES`, corners and score."""

    cls: int
    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def label(self) -> str:
        return CLASSES[self.cls]

    @property
    def usable(self) -> bool:
        """At least 2 px each way: anything smaller holds no readable text."""
        return self.x1 - self.x0 >= 2 and self.y1 - self.y0 >= 2


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PageRef(_Record):
    """One stored drawing page: where its pixels are and where it came from."""

    drawing_id: str = Field(pattern=r"^[0-9a-f]{64}$")  # sha256 of the input file
    source: str
    page: int = Field(ge=1)
    n_pages: int = Field(ge=1)
    key: str  # storage key of the page's PNG; it carries the pixels' hash
    dpi: float | None
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    text_key: str | None = None  # storage key of the page's PDF text layer (JSON runs); None: read by OCR

    @property
    def suffix(self) -> str:
        """Output-name suffix that keeps pages apart: "" for page 1, "-p2", "-p3"... after it."""
        return "" if self.page == 1 else f"-p{self.page}"


class Detections(_Record):
    """A page's boxes and the quarter turns (counter-clockwise) its sheet was scanned at."""

    boxes: list[Box]
    turn: int = Field(default=0, ge=0, le=3)
    elapsed_ms: float = 0.0

    def title_box(self) -> Box | None:
        """The detector's most confident title-block box, if it found one."""
        return max((b for b in self.boxes if b.cls == 2), key=lambda b: b.score, default=None)


class Reading(_Record):
    """One box as read: the raw string, its parsed fields (or why not) and the reader's belief."""

    box: Box
    raw: str
    confidence: float = Field(ge=0.0, le=1.0)
    fields: CalloutFields | None = None
    error: str | None = None  # why the grammar refused the string
    repaired: bool = False  # it parsed only after OCR debris at its edges was trimmed


class Readings(_Record):
    """A page's readings; a page read from its PDF text layer also brings the frames, datums,
    roughness values and title block found there."""

    items: list[Reading]
    elapsed_ms: float = 0.0
    source: Literal["ocr", "pdf_text"] = "ocr"
    gdt: list[FeatureControlFrame] = Field(default_factory=list)
    datums: list[DatumSymbol] = Field(default_factory=list)
    surface_finish: list[SurfaceFinish] = Field(default_factory=list)
    title_block: TitleBlock | None = None


class Strokes(_Record):
    """The page's vector strokes (x1, y1, x2, y2 in px) and the segmenter's class for each."""

    segments: list[tuple[float, float, float, float]]
    classes: list[int]
    elapsed_ms: float = 0.0

    @classmethod
    def from_arrays(cls, segments: np.ndarray, classes: np.ndarray, elapsed_ms: float = 0.0) -> Strokes:
        seg = np.round(np.asarray(segments, np.float64).reshape(-1, 4), 1)
        return cls(segments=[tuple(s) for s in seg.tolist()], classes=np.asarray(classes).astype(int).tolist(),
                   elapsed_ms=elapsed_ms)  # fmt: skip

    @cached_property
    def array(self) -> np.ndarray:
        return np.asarray(self.segments, np.float32).reshape(-1, 4)

    def of_class(self, name: str) -> np.ndarray:
        """The strokes the segmenter put in class `name` (one of `STROKE_CLASSES`)."""
        if not self.classes:
            return np.zeros((0, 4), np.float32)
        return self.array[np.asarray(self.classes) == STROKE_CLASSES.index(name)]


class StoredResult(_Record):
    """Where a page's result, ballooned drawing and inspection table were stored."""

    page: PageRef
    objects: dict[str, str]  # "json", "png", "csv" -> storage key (not `keys`: dict(model) would call it)
    uris: dict[str, str]  # the same -> URI a person can open
    n_dimensions: int
    timings_ms: dict[str, float]
    written: bool  # False: an identical result was already stored and nothing was written
