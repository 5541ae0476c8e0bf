"""The models a worker serves: the registry's champions, loaded once per process, with fallback.

A warm worker must not reload models per run, and must not change the registry either: serving
only reads aliases (`dimflow models bootstrap` and deploy steps register models). A champion
that fails to load (a checksum mismatch, say) falls back to the newest earlier version that
loads, and the result's `models` says so; a registry that cannot be read fails the run.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dimflow import devices, registry

log = logging.getLogger(__name__)

ROLES = ("detector", "reader", "segmenter")  # the result's `models` keys, and the lifecycle's model keys


@dataclass
class ModelSet:
    detector: Any
    reader: Any
    segmenter: Any
    text_engine: Any
    refs: dict[str, str]  # role -> "name/version" (+ "<role>_note" when a fallback happened), text engine, device

    @property
    def key(self) -> str:
        return models_key(self.refs)

    def prepare(self, budgets: list[int]) -> None:
        """Make the ONNX sessions for each thread budget now, not in a job (`devices.budgets`)."""
        for b in budgets:
            for model, make in ((self.detector, "_session"), (self.text_engine, "_engine")):
                if hasattr(model, make):
                    getattr(model, make)(b)


def models_key(refs: dict[str, str]) -> str:
    """What cached stage results depend on: the exact versions that ran, not the notes about them."""
    return ",".join(f"{k}={v}" for k, v in sorted(refs.items()) if not k.endswith("_note"))


_LOOKALIKES = str.maketrans("ЗОАВСЕНКМРТХІ", "3OABCEHKMPTXI")  # Cyrillic read for Latin in a strip


class TextEngine:
    """General text (notes, title block) through RapidOCR's recogniser, whose models ship in its wheel."""

    GLYPH = (0.4, 1.2)  # width/height of a crop holding one glyph (a zone mark, a datum letter); under: vertical text
    STRIP = 8  # glyphs read together as one line
    GAP = 0.25  # white between two glyphs of a strip, in heights

    def __init__(self) -> None:
        self._engines: dict[int | None, Any] = {}
        self.ref = f"rapidocr-onnxruntime/{metadata.version('rapidocr-onnxruntime')}"
        self._engine(max(devices.budgets(), default=None))  # as the detector's first session (see there)

    def _engine(self, threads: int | None) -> Any:
        """RapidOCR for a thread budget (`devices.thread_budget`), made once per budget."""
        got = self._engines.get(threads)
        if got is None:
            from rapidocr_onnxruntime import RapidOCR

            got = self._engines[threads] = RapidOCR(**({"intra_op_num_threads": threads} if threads else {}))
        return got

    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only (the detector already boxed the text), in batches. Narrow crops (one
        glyph: a zone mark, a datum letter) are read a strip at a time as they stand (see
        `_strips`); a tall crop that does not read so is taken for vertical text and turned upright
        (turned first, a lone 3 or 5 read as W or S)."""
        if not crops:
            return []
        out: list[tuple[str, float] | None] = [None] * len(crops)
        lo, hi = self.GLYPH
        glyphs = [i for i, c in enumerate(crops) if c.size and lo <= c.shape[1] / c.shape[0] <= hi]
        if len(glyphs) >= 3:
            for i, got in self._strips([crops[i] for i in glyphs]).items():
                out[glyphs[i]] = got
        rest = [i for i, got in enumerate(out) if got is None]
        ups = [crops[i] if lo * crops[i].shape[0] <= crops[i].shape[1] else np.rot90(crops[i], k=-1) for i in rest]
        for i, got in zip(rest, self._rec(ups), strict=True):
            out[i] = got
        return out  # type: ignore[return-value]

    def _rec(self, imgs: list[np.ndarray]) -> list[tuple[str, float]]:
        if not imgs:
            return []
        res, _ = self._engine(devices.thread_budget()).text_rec([np.dstack([c] * 3) for c in imgs])
        return [(" ".join(str(t).split()), max(0.0, min(1.0, float(score)))) for t, score in res]

    def _strips(self, glyphs: list[np.ndarray]) -> dict[int, tuple[str, float]]:
        """Single glyphs side by side on white, one line per `STRIP`, each line one recognition:
        the recogniser pads every input to 6.7 heights wide, so 18 zone marks read one by one cost
        three full batches (~0.25 s an A4 page on 2 cores), their strips ~0.05 s. A line that does
        not come back as one ASCII letter or digit per glyph (full-width forms and Cyrillic
        look-alikes of the recogniser's Chinese alphabet mapped back) is read glyph by glyph."""
        h = max(c.shape[0] for c in glyphs)
        out: dict[int, tuple[str, float]] = {}
        for start in range(0, len(glyphs), self.STRIP):
            part = glyphs[start : start + self.STRIP]
            gap = np.full((h, max(1, round(self.GAP * h))), 255, np.uint8)
            pieces = [gap]
            for c in part:
                w = max(1, round(c.shape[1] * h / c.shape[0]))
                scaled = cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) if c.shape[0] != h else c
                pieces += [scaled.astype(np.uint8), gap]
            text, conf = self._rec([np.hstack(pieces)])[0]
            chars = unicodedata.normalize("NFKC", text).replace(" ", "").translate(_LOOKALIKES)
            if len(chars) == len(part) and chars.isascii() and chars.isalnum():
                out.update({start + k: (ch, conf) for k, ch in enumerate(chars)})
        return out


def on_device(model: Any) -> Any:
    """Torch models go to the GPU when the worker has one; the detector picks its ONNX provider."""
    import torch

    return model.to(devices.pick_device()) if isinstance(model, torch.nn.Module) else model


def _device_name(model: Any) -> str:
    dev = next(model.parameters()).device
    if dev.type != "cuda":
        return "cpu"
    import torch

    return f"cuda ({torch.cuda.get_device_name(dev)})"


def _load_one(role: str, champion: int) -> tuple[Any, str, str | None]:
    """Load `role`'s champion; on failure the newest earlier version that loads, with a note."""
    from dimflow.lifecycle import get_kind

    kind = get_kind(role)
    try:
        reg = registry.load(kind.name, version=champion)
        return on_device(kind.load(reg.path)), reg.ref, None
    except registry.RegistryUnavailable:
        raise  # the registry itself failed: no fallback can be trusted either
    except Exception as exc:  # checksum mismatch, missing files, a model that does not build
        first = f"{kind.name}/{champion} (champion) failed to load: {type(exc).__name__}: {exc}"
        log.warning(first)
        for v in (v for v in registry.versions(kind.name) if v < champion):
            try:
                reg = registry.load(kind.name, version=v)
                model = on_device(kind.load(reg.path))
            except registry.RegistryUnavailable:
                raise
            except Exception as exc2:  # try the next older one
                log.warning("%s/%s failed to load too: %s", kind.name, v, exc2)
                continue
            note = f"fell back to {reg.ref}: {first}"
            log.warning(note)
            return model, reg.ref, note
        raise registry.RegistryError(f"{first}; no earlier version loads either") from exc


def champion_versions() -> dict[str, int]:
    """Each role's champion version, read from the registry without loading anything (cheap: a
    warm worker checks it per run). Never registers anything: an empty registry is an error."""
    from dimflow.lifecycle import get_kind

    found: dict[str, int] = {}
    for role in ROLES:
        name = get_kind(role).name
        version = registry.version_by_alias(name, registry.CHAMPION)
        if version is None:
            raise registry.RegistryError(
                f"{name}: no '{registry.CHAMPION}' alias in the registry at {registry.tracking_uri()}; "
                "register the shipped models with `dimflow models bootstrap` (or promote a trained version)"
            )
        found[role] = version
    return found


def champion_refs() -> dict[str, str]:
    """Each role's champion as "name/version", without loading anything (what a cache lookup keys on)."""
    from dimflow.lifecycle import get_kind

    return {role: f"{get_kind(role).name}/{v}" for role, v in champion_versions().items()}


_MODELS: ModelSet | None = None
_LOADED_FOR: dict[str, int] = {}  # the champions the loaded set was loaded for (fallbacks included)
_HELD: dict[str, ModelSet] = {}  # recent sets by models key: a job started on one finishes on it
_HELD_FOR: dict[tuple, ModelSet] = {}  # the same sets by the champion versions they were loaded for
_HELD_SETS = 3
_LOCK = threading.Lock()
_WATCHING = threading.Event()


def _load_set(wanted: dict[str, int]) -> ModelSet:
    loaded: dict[str, Any] = {}
    refs: dict[str, str] = {}
    for role in ROLES:
        model, ref, note = _load_one(role, wanted[role])
        loaded[role], refs[role] = model, ref
        if note:
            refs[f"{role}_note"] = note
    engine = TextEngine()
    refs["text"] = engine.ref
    refs["device"] = _device_name(loaded["reader"])
    models = ModelSet(loaded["detector"], loaded["reader"], loaded["segmenter"], engine, refs)
    models.prepare(devices.budgets())  # a service worker's sessions for each share of the cores
    return models


def _install(models: ModelSet, wanted: dict[str, int]) -> None:
    global _MODELS, _LOADED_FOR
    _MODELS, _LOADED_FOR = models, wanted
    _HELD.pop(models.key, None)
    _HELD[models.key] = models
    _HELD_FOR[tuple(sorted(wanted.items()))] = models
    while len(_HELD) > _HELD_SETS:
        _HELD.pop(next(iter(_HELD)))
    for k in [k for k, m in _HELD_FOR.items() if all(m is not h for h in _HELD.values())]:
        del _HELD_FOR[k]
    log.info("models loaded: %s", models.key)


def get_models(reload: bool = False) -> ModelSet:
    """The process's models: loaded on first use, then reused.

    A new champion is picked up when the champions' aliases move: checked per call, or, in a
    process that follows the registry (`follow_registry`: the service's workers), by its watcher
    in the background, so a call costs no registry lookup. A set that fell back past a broken
    champion is kept until the aliases move.
    """
    with _LOCK:
        if _MODELS is not None and not reload and _WATCHING.is_set():
            return _MODELS
        wanted = champion_versions()
        if _MODELS is not None and not reload and wanted == _LOADED_FOR:
            return _MODELS
        _install(_load_set(wanted), wanted)
        return _MODELS


def loaded_models(key: str | None = None) -> ModelSet:
    """The models a run's stages use without asking the registry again: the set its start chose
    (`key`, a `models_key`), held while newer champions load, else the current one."""
    if key is not None and (held := _HELD.get(key)) is not None:
        return held
    return _MODELS if _MODELS is not None else get_models()


def follow_registry(every_s: float, on_change=None) -> threading.Thread:
    """Watch the champions' aliases every `every_s` in a background thread; when they move, load
    the new set beside the current one and switch to it between two calls of `get_models`. Jobs
    already running keep their set (`loaded_models(key)`). A registry that does not answer, or a
    new set that fails to load, leaves the current set serving (logged)."""
    get_models()
    _WATCHING.set()

    def watch() -> None:
        failing = False
        while True:
            time.sleep(every_s)
            try:
                wanted = champion_versions()
                if wanted == _LOADED_FOR:
                    failing = False
                    continue
                t0 = time.perf_counter()
                # a rollback finds its set still held; else it loads beside the current one (jobs go on meanwhile),
                # and a challenger that shadow runs hold is promoted without loading it again
                models = _HELD_FOR.get(tuple(sorted(wanted.items())))
                if models is None and _CHALLENGERS["versions"] == wanted:
                    models = _CHALLENGERS["set"]
                models = models or _load_set(wanted)
                with _LOCK:
                    before = _MODELS.key if _MODELS is not None else None
                    _install(models, wanted)
                if on_change is not None:
                    on_change(before, models, time.perf_counter() - t0)
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("champions not checked (%s: %s); serving %s", type(exc).__name__, exc,
                                _MODELS.key if _MODELS else None)  # fmt: skip
                failing = True

    t = threading.Thread(target=watch, name="dimflow-registry-watch", daemon=True)
    t.start()
    return t


_CHALLENGERS: dict[str, Any] = {"checked": -1e9, "versions": None, "set": None}


def challenger_versions() -> dict[str, int] | None:
    """The versions a shadow run uses: each role's `challenger`, else its champion; None when no
    role has a challenger."""
    from dimflow.lifecycle import get_kind

    champions = champion_versions()
    found = {role: registry.version_by_alias(get_kind(role).name, registry.CHALLENGER) for role in ROLES}
    if all(v is None for v in found.values()):
        return None
    return {role: v if v is not None else champions[role] for role, v in found.items()}


def challenger_models() -> ModelSet | None:
    """The challengers as a model set (loaded once per set of versions, looked up at most every
    `champion_poll_s`), or None when there is none or one fails to load as itself."""
    from dimflow.settings import get_settings

    with _LOCK:
        if time.monotonic() - _CHALLENGERS["checked"] > get_settings().champion_poll_s:
            _CHALLENGERS["checked"] = time.monotonic()
            wanted = challenger_versions()
            if wanted != _CHALLENGERS["versions"]:
                models = _load_set(wanted) if wanted else None
                if models is not None and any(k.endswith("_note") for k in models.refs):
                    log.warning("no shadow runs: a challenger fell back on load (%s)", models.refs)
                    models = None
                _CHALLENGERS.update(versions=wanted, set=models)
        return _CHALLENGERS["set"]


def models_at(folders: dict[str, Path]) -> ModelSet:
    """A model set from one folder per role (a trained folder, a registry download, the baseline),
    each on this process's device, its folder as its ref: for scoring candidates, not for serving."""
    from dimflow.lifecycle import get_kind

    loaded = {role: on_device(get_kind(role).load(folder)) for role, folder in folders.items()}
    return ModelSet(**loaded, text_engine=TextEngine(), refs={role: str(folder) for role, folder in folders.items()})


def models_from(folder: Path, device: str = "cpu") -> ModelSet:
    """A model set straight from a folder of model folders (the shipped models/baseline), without
    the registry: for GPU checks and behaviour tests, not for serving."""
    from dimflow.lifecycle import get_kind

    load = {role: get_kind(role).load(folder / role) for role in ROLES}
    for role in ("reader", "segmenter"):
        load[role] = load[role].to(device)
    return ModelSet(load["detector"], load["reader"], load["segmenter"], TextEngine(), {})
