"""The models a worker serves: the registry's champions, loaded once per process, with fallback.

A warm worker must not reload models per run, and must not change the registry either: serving
only reads aliases (`dimflow models bootstrap` and deploy steps register models). A champion
that fails to load (a checksum mismatch, say) falls back to the newest earlier version that
loads, and the result's `models` says so; a registry that cannot be read fails the run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from dimflow import registry
from dimflow.devices import pick_device

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


def models_key(refs: dict[str, str]) -> str:
    """What cached stage results depend on: the exact versions that ran, not the notes about them."""
    return ",".join(f"{k}={v}" for k, v in sorted(refs.items()) if not k.endswith("_note"))


class TextEngine:
    """General text (notes, title block) through RapidOCR's recogniser, whose models ship in its wheel."""

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        self.ref = f"rapidocr-onnxruntime/{metadata.version('rapidocr-onnxruntime')}"

    def read(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """Recognition only (the detector already boxed the text), in batches; tall crops turned upright."""
        if not crops:
            return []
        imgs = [np.dstack([np.rot90(c, k=-1) if c.shape[0] > 1.5 * c.shape[1] else c] * 3) for c in crops]
        res, _ = self.engine.text_rec(imgs)
        return [(" ".join(str(t).split()), max(0.0, min(1.0, float(score)))) for t, score in res]


def on_device(model: Any) -> Any:
    """Torch models go to the GPU when the worker has one; the detector picks its ONNX provider."""
    import torch

    return model.to(pick_device()) if isinstance(model, torch.nn.Module) else model


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
_LOCK = threading.Lock()


def get_models(reload: bool = False) -> ModelSet:
    """The process's models: loaded on first use, then reused.

    A new champion is picked up when the champions' aliases move (checked cheaply per call); a set
    that fell back past a broken champion is kept until they do.
    """
    global _MODELS, _LOADED_FOR
    with _LOCK:
        wanted = champion_versions()
        if _MODELS is not None and not reload and wanted == _LOADED_FOR:
            return _MODELS
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
        _MODELS = ModelSet(loaded["detector"], loaded["reader"], loaded["segmenter"], engine, refs)
        _LOADED_FOR = wanted
        log.info("models loaded: %s", _MODELS.key)
        return _MODELS


def loaded_models() -> ModelSet:
    """The models this process holds, without asking the registry again (a run's stages after its
    start checked the champions once); loads them if none are."""
    return _MODELS if _MODELS is not None else get_models()


def models_from(folder: Path, device: str = "cpu") -> ModelSet:
    """A model set straight from a folder of model folders (the shipped models/baseline), without
    the registry: for GPU checks and behaviour tests, not for serving."""
    from dimflow.lifecycle import get_kind

    load = {role: get_kind(role).load(folder / role) for role in ROLES}
    for role in ("reader", "segmenter"):
        load[role] = load[role].to(device)
    return ModelSet(load["detector"], load["reader"], load["segmenter"], TextEngine(), {})
