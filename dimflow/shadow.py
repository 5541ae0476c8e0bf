"""Shadow evaluation: the challengers read some of the drawings users send, beside the champions,
and how far they agree is recorded field by field, without changing any result.

This is the A/B evidence a promotion can rest on: agreement on real traffic, not only a score on
a split. A page is picked by its content hash (`picked`), so the same drawing is always in or out
of the sample and the share is honest whatever the order of arrival. A record is stored once per
(page, champion set, challenger set) under `shadow/<pair>/`; `summarize` adds them up for
`dimflow models compare`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from dimflow.evaluate import iou
from dimflow.schema import DrawingResult

FIELDS = ("text", "kind", "nominal", "upper", "lower", "fit", "count")
PREFIX = "shadow"
MATCH_IOU = 0.5


def picked(drawing_id: str, page: int, share: float) -> bool:
    """Whether this page is in the shadow sample (`share` of all pages, by content hash)."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{drawing_id}:{page}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def pair_key(champion: dict[str, str], challenger: dict[str, str]) -> str:
    """A short stable name for one (champion set, challenger set) pair."""
    text = json.dumps([sorted(champion.items()), sorted(challenger.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compare(champion: DrawingResult, challenger: DrawingResult) -> dict[str, Any]:
    """Per-field agreement on one page: dimensions matched by box (IoU >= 0.5, best first), then
    each field of each matched pair compared; unmatched dimensions on either side counted."""
    pairs = sorted(((iou(a.bbox, b.bbox), i, j) for i, a in enumerate(champion.dimensions)
                    for j, b in enumerate(challenger.dimensions)), reverse=True)  # fmt: skip
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched: list[tuple[int, int]] = []
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            matched.append((i, j))
    same = dict.fromkeys(FIELDS, 0)
    for i, j in matched:
        a, b = champion.dimensions[i], challenger.dimensions[j]
        for f in FIELDS:
            same[f] += getattr(a, f) == getattr(b, f)
    return {"champion_dimensions": len(champion.dimensions), "challenger_dimensions": len(challenger.dimensions),
            "matched": len(matched), "same": same,
            "gdt": [len(champion.gdt), len(challenger.gdt)]}  # fmt: skip


def record(page_key: str, champion: dict[str, str], challenger: dict[str, str], agreement: dict) -> bytes:
    """The stored record of one page's comparison (deterministic: a page compared again stores nothing new)."""
    doc = {"page": page_key, "champion": champion, "challenger": challenger, "agreement": agreement}
    return json.dumps(doc, sort_keys=True).encode()


@dataclass
class Summary:
    champion: dict[str, str]
    challenger: dict[str, str]
    pages: int = 0
    champion_dimensions: int = 0
    challenger_dimensions: int = 0
    matched: int = 0
    same: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))

    @property
    def detection_agreement(self) -> float:
        """Matched dimensions over all dimensions either side found (1.0: both found the same ones)."""
        union = self.champion_dimensions + self.challenger_dimensions - self.matched
        return self.matched / union if union else 1.0

    def field_agreement(self) -> dict[str, float]:
        return {f: (n / self.matched if self.matched else 1.0) for f, n in self.same.items()}


def summarize(records: list[bytes]) -> list[Summary]:
    """Records added up per (champion set, challenger set) pair, most pages first."""
    out: dict[str, Summary] = {}
    for raw in records:
        doc = json.loads(raw)
        key = pair_key(doc["champion"], doc["challenger"])
        s = out.setdefault(key, Summary(doc["champion"], doc["challenger"]))
        a = doc["agreement"]
        s.pages += 1
        s.champion_dimensions += a["champion_dimensions"]
        s.challenger_dimensions += a["challenger_dimensions"]
        s.matched += a["matched"]
        for f in FIELDS:
            s.same[f] += a["same"].get(f, 0)
    return sorted(out.values(), key=lambda s: -s.pages)


def shadow_page(store, page, champion_json: str, challengers) -> dict | None:
    """Read one stored page again with the challenger set and store how its result agrees with
    the champions' (stored under `champion_json`); returns the agreement, or None when the
    challengers are the champions. Nothing of the champions' result is touched."""
    from dimflow import devices, stages

    champion = DrawingResult.model_validate_json(store.get(champion_json))
    theirs = {k: v for k, v in challengers.refs.items() if not k.endswith("_note")}
    ours = {k: champion.models.get(k, "") for k in theirs}
    if theirs == ours:
        return None
    gray = stages.page_pixels(store, page)
    runs = stages.page_runs(store, page)
    with devices.model_turn():
        result = stages.process_page(challengers, gray, page, runs=runs)
    agreement = compare(champion, result)
    key = f"{PREFIX}/{pair_key(ours, theirs)}/{page.drawing_id}-p{page.page}.json"
    store.put(key, record(page.key, ours, theirs, agreement), "application/json")
    return agreement
