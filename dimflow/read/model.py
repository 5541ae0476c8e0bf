"""The callout reader: a CRNN (convolutions, BiLSTM, CTC) over the dimension alphabet.

Crops are turned upright (tall crops are rotated text), scaled to a fixed height and read
in one pass; stacked tolerances are read as the normalised `+a/-b` because the BiLSTM sees
the whole crop. Output goes through the grammar to the contract's text.
"""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from dimflow.read.orient import Orientation, upright_views

WEIGHTS = "reader.pt"
CONFIG = "reader.json"
ORIENT = "orient.pt"
INK = 150  # darker than this is ink in a crop
CHARSET = " " + string.digits + string.ascii_uppercase + string.ascii_lowercase + ".,+-/()±°Ø:%#=*'\"&<>_"


@dataclass
class ReaderConfig:
    height: int = 40
    max_width: int = 768
    charset: str = CHARSET
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 192, 256])
    lstm: int = 160
    # quarter turns (counter-clockwise) text is written at: ISO 129's aligned system writes text
    # upright or turned 90° CCW (read from the right), never upside down or read from the left;
    # without this prior a lone "9" on a vertical dimension reads as "6" turned the other way
    turns: list[int] = field(default_factory=lambda: [0, 1])


def upright(gray: np.ndarray) -> list[np.ndarray]:
    """Candidate upright views of a crop: itself, plus both quarter turns for tall crops
    (vertical dimensions; a short horizontal callout such as `7` is tall too)."""
    h, w = gray.shape[:2]
    if h > 1.3 * w:
        return [np.rot90(gray, k=-1).copy(), np.rot90(gray, k=1).copy(), gray]  # 90° CCW text first
    return [gray]


def ink_level(gray: np.ndarray) -> int:
    """Darker than this is ink in this crop: `INK`, raised for a light ink (a colour export printed
    gray, luma up to ~150) to halfway between the ink and the paper, so a stack drawn in it is
    still found. Black ink on white keeps `INK`; a crop without contrast keeps it too."""
    if gray.size == 0:
        return INK
    dark, paper = (float(v) for v in np.percentile(gray, (1, 60)))
    if paper - dark < 60:
        return INK
    return int(max(INK, (dark + paper) / 2))


def _components(gray: np.ndarray, level: int | None = None) -> list[np.ndarray]:
    ink = (gray < (ink_level(gray) if level is None else level)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return [stats[i] for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 3]


def find_stack(gray: np.ndarray, level: int | None = None) -> tuple[int, int] | None:
    """Where a crop ends in two stacked lines (deviations or limits): (first column, split row).

    Scans candidate start columns left to right; the region right of a start is stacked when
    an empty row in its middle 60% separates its glyphs into two lines, each at least 28% of
    the crop's ink height. Small marks (signs, points, a comma's tail reaching the next line)
    go with the line their top is in. Tall narrow components (the brackets SOLIDWORKS draws
    around a stack) and long flat ones (an underline) belong to neither line.
    """
    return _stack_in(_components(gray, level))


def _stack_in(comps: list[np.ndarray]) -> tuple[int, int] | None:
    if len(comps) < 2:
        return None
    height, body = _text_body(comps)
    top = min(int(c[1]) for c in body) if body else 0
    lo_band, hi_band = int(0.2 * height), int(0.8 * height)
    for xs in sorted({int(c[0]) for c in body}):
        region = [c for c in body if c[0] >= xs]
        if len(region) < 2:
            break
        glyphs = [c for c in region if c[3] >= 0.25 * height]
        rows = np.zeros(height + 1, int)
        for c in glyphs:
            rows[c[1] - top : c[1] + c[3] - top] += 1
        empty = np.nonzero(rows[lo_band : hi_band + 1] == 0)[0]
        if not len(empty):
            continue
        split = top + lo_band + int(empty[len(empty) // 2])
        upper = [c for c in region if c[1] < split]
        lower = [c for c in region if c[1] >= split]
        big_upper, big_lower = [c for c in glyphs if c[1] < split], [c for c in glyphs if c[1] >= split]
        if not big_upper or not big_lower or min(_span(big_upper), _span(big_lower)) < 0.28 * height:
            continue
        if _main_text_in_a_line(upper, lower):
            continue
        return xs, split
    return None


def _text_body(comps: list[np.ndarray]) -> tuple[int, list[np.ndarray]]:
    """The crop's text: its ink height and its components other than brackets and rules."""
    top = min(int(c[1]) for c in comps)
    height = max(int(c[1] + c[3]) for c in comps) - top
    kept = [c for c in comps if not _rule(c, height)] or comps
    top = min(int(c[1]) for c in kept)
    height = max(int(c[1] + c[3]) for c in kept) - top
    body = [c for c in kept if not _tall_bracket(c, height)]
    return height, sorted(body, key=lambda c: int(c[0]))


def _main_text_in_a_line(upper: list[np.ndarray], lower: list[np.ndarray]) -> bool:
    """Whether one of the two lines begins with the callout's main text: SOLIDWORKS aligns the
    nominal with the lower deviation (`7.50` beside `+0.10` over `-0.20`), so from its column the
    crop looks stacked. Told by that line starting 3/4 of a glyph height before the other, with a
    word gap in it before the other's start; flat strokes (an underline) are not text."""
    line_h = max(int(c[3]) for c in (*upper, *lower))  # the tallest glyph: a line's span grows with a nominal in it
    first, other = (upper, lower) if min(c[0] for c in upper) <= min(c[0] for c in lower) else (lower, upper)
    start = min(int(c[0]) for c in other)
    if start - min(int(c[0]) for c in first) <= 0.75 * line_h:
        return False
    glyphs = sorted((c for c in first if c[3] >= 0.25 * line_h or c[2] < 0.6 * line_h), key=lambda c: int(c[0]))
    before = [c for c in glyphs if c[0] < start]  # the first line's glyphs up to the other's start
    if not before:
        return False
    ends = np.maximum.accumulate([int(c[0] + c[2]) for c in before])
    nexts = [int(c[0]) for c in before[1:]] + [min([int(c[0]) for c in glyphs if c[0] >= start] or [start])]
    return max(b - a for a, b in zip(ends, nexts, strict=True)) >= 0.4 * line_h  # a word gap: main text, then the stack


def _tall_bracket(c: np.ndarray, height: int) -> bool:
    return c[3] >= 0.8 * height and c[2] < 0.35 * c[3]


def _rule(c: np.ndarray, height: int) -> bool:
    """A long flat stroke (the dimension line under a callout), not a glyph: a minus sign is short."""
    return c[3] <= max(2, 0.15 * height) and c[2] >= 2 * height


def _span(comps: list[np.ndarray]) -> int:
    return max(int(c[1] + c[3]) for c in comps) - min(int(c[1]) for c in comps)


def _trim(gray: np.ndarray, level: int) -> np.ndarray:
    ys, xs = np.nonzero(gray < level)
    if not len(ys):
        return gray[:1, :1]
    return gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def unstack(gray: np.ndarray) -> np.ndarray:
    """Lay a stacked tolerance or limit pair out on one line as `main upper / lower`.

    The reader then sees one line of text, and the slash it is trained to read stands where
    the two lines met; crops without a stack come back unchanged. Each ink component goes whole
    to the main text (left of the stack's first column), the upper or the lower line, with the
    pixels around it, so a glyph reaching past the column is not cut in two.
    """
    level = ink_level(gray)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((gray < level).astype(np.uint8), connectivity=8)
    comps = [stats[i] for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 3]  # as `_components` keeps them
    found = _stack_in(comps)
    if found is None:
        return gray
    xs, split = found
    height, _ = _text_body(comps)
    groups: dict[str, list[int]] = {"main": [], "upper": [], "lower": []}
    for i in range(1, n):
        x, y = int(stats[i, 0]), int(stats[i, 1])
        if _tall_bracket(stats[i], height) or _rule(stats[i], height):
            continue
        groups["main" if x < xs else "upper" if y < split else "lower"].append(i)

    def part(ids: list[int]) -> np.ndarray:
        mask = cv2.dilate(np.isin(labels, ids).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        return _trim(np.where(mask, gray, 255).astype(np.uint8), level)

    pieces = [part(groups["main"])] if groups["main"] else []
    upper, lower = part(groups["upper"]), part(groups["lower"])
    h = max(p.shape[0] for p in [*pieces, upper, lower])
    gap = max(2, h // 4)
    slash = np.full((h, max(3, h // 2)), 255, np.uint8)
    cv2.line(slash, (0, h - 1), (slash.shape[1] - 1, 0), 0, max(1, h // 12))
    parts = [*pieces, upper, slash, lower] if pieces else [upper, slash, lower]
    canvas = np.full((h + 2 * gap, sum(p.shape[1] for p in parts) + gap * (len(parts) + 1)), 255, np.uint8)
    x = gap
    for p in parts:
        y = gap + (h - p.shape[0]) // 2
        canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return canvas


def to_input(gray: np.ndarray, cfg: ReaderConfig) -> np.ndarray:
    """Scale an upright grayscale crop to the model's height; ink bright on black, float32."""
    h, w = gray.shape[:2]
    new_w = int(np.clip(round(w * cfg.height / max(h, 1)), 8, cfg.max_width))
    img = cv2.resize(gray, (new_w, cfg.height), interpolation=cv2.INTER_AREA)
    return 1.0 - img.astype(np.float32) / 255.0


def batch(images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the widest image; returns (B, 1, H, W) and the widths."""
    widths = torch.tensor([im.shape[1] for im in images])
    out = np.zeros((len(images), 1, images[0].shape[0], int(widths.max())), np.float32)
    for i, im in enumerate(images):
        out[i, 0, :, : im.shape[1]] = im
    return torch.from_numpy(out), widths


class CRNN(nn.Module):
    def __init__(self, cfg: ReaderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels

        def block(i: int, o: int, pool: tuple[int, int] | None) -> list[nn.Module]:
            mods: list[nn.Module] = [
                nn.Conv2d(i, o, 3, padding=1, bias=False),
                nn.BatchNorm2d(o),
                nn.ReLU(inplace=True),
            ]
            if pool:
                mods.append(nn.MaxPool2d(pool, pool))
            return mods

        self.features = nn.Sequential(
            *block(1, c[0], (2, 2)),  # H/2, W/2
            *block(c[0], c[1], (2, 2)),  # H/4, W/4
            *block(c[1], c[2], None),
            *block(c[2], c[2], (2, 1)),  # H/8
            *block(c[2], c[3], (2, 1)),  # H/16
            *block(c[3], c[4], None),
        )
        self.collapse = nn.AdaptiveAvgPool2d((1, None))
        self.rnn = nn.LSTM(c[4], cfg.lstm, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.head = nn.Linear(2 * cfg.lstm, len(cfg.charset) + 1)  # 0 is the CTC blank
        self.orient: Orientation | None = None  # decides which way a crop reads (own weights file)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> log-probabilities (T, B, C) for CTC, T = W / 4."""
        f = self.collapse(self.features(x)).squeeze(2).transpose(1, 2)  # (B, T, C)
        out, _ = self.rnn(f)
        return self.head(out).log_softmax(2).transpose(0, 1)

    # ------------------------------------------------------------------ text <-> labels

    def encode(self, text: str) -> list[int]:
        idx = {ch: i + 1 for i, ch in enumerate(self.cfg.charset)}
        return [idx[ch] for ch in text if ch in idx]

    def decode(self, logp: torch.Tensor, widths: torch.Tensor) -> list[tuple[str, float]]:
        """Greedy CTC decoding; confidence is the mean max-probability of emitted frames."""
        prob, best = logp.exp().max(2)  # (T, B)
        out = []
        for b in range(best.shape[1]):
            t_max = max(1, int(widths[b]) // 4)
            prev, chars, confs = 0, [], []
            for t in range(t_max):
                k = int(best[t, b])
                if k != 0 and k != prev:
                    chars.append(self.cfg.charset[k - 1])
                    confs.append(float(prob[t, b]))
                prev = k
            out.append(("".join(chars), float(np.mean(confs)) if confs else 0.0))
        return out

    @torch.no_grad()
    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Read grayscale crops (any orientation); returns (raw text, confidence) for each."""
        if not crops:
            return []
        views, owner = [], []
        probs = self.orient.predict(crops) if self.orient is not None else None
        if probs is not None and self.cfg.turns:
            allowed = np.zeros(probs.shape[1], bool)
            allowed[self.cfg.turns] = True
            probs = np.where(allowed, probs, 0.0)
            probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-9)
        for i, crop in enumerate(crops):
            for v in upright(crop) if probs is None else upright_views(crop, probs[i]):
                views.append(to_input(unstack(v), self.cfg))
                owner.append(i)
        dev = next(self.parameters()).device
        results: list[tuple[str, float]] = [("", -1.0)] * len(crops)
        order = np.argsort([v.shape[1] for v in views])
        for start in range(0, len(order), 32):
            chunk = [int(j) for j in order[start : start + 32]]
            x, widths = batch([views[j] for j in chunk])
            for j, (text, conf) in zip(chunk, self.decode(self(x.to(dev)), widths), strict=True):
                if conf > results[owner[j]][1]:
                    results[owner[j]] = (text, conf)
        return results

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # half precision on disk: the shipped set must stay small; reads are unchanged
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("orient.")}
        torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, folder / WEIGHTS)
        if self.orient is not None:
            torch.save(self.orient.state_dict(), folder / ORIENT)
        (folder / CONFIG).write_text(json.dumps(asdict(self.cfg), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> CRNN:
        cfg = ReaderConfig(**json.loads((folder / CONFIG).read_text()))
        model = cls(cfg)
        state = torch.load(folder / WEIGHTS, map_location=device, weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        if (folder / ORIENT).is_file():
            model.orient = Orientation()
            model.orient.load_state_dict(torch.load(folder / ORIENT, map_location=device, weights_only=True))
        return model.to(device).eval()
