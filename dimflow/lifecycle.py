"""Model lifecycle: train -> register (challenger) -> compare with champion -> promote;
bootstrap the shipped baseline; evaluate champions on a split.

One table (`KINDS`) says, for each model, how it trains, loads, evaluates and which metric
decides promotion, so the three models share one code path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dimflow import registry
from dimflow.registry import CHALLENGER, CHAMPION, MODEL_NAMES, PREVIOUS
from dimflow.settings import get_settings


@dataclass(frozen=True)
class ModelKind:
    key: str  # "reader", "segmenter", "detector"
    metric: str  # the number that decides promotion (higher is better)
    train: Callable[..., tuple[Any, dict]]
    load: Callable[[Path], Any]
    evaluate: Callable[[Any, Path], dict]  # (model, split folder) -> metrics
    params: type  # its training parameters (a dataclass)
    resumes: bool = False  # its train() takes `checkpoint` and resumes from it (the detector resumes its own run)

    @property
    def name(self) -> str:
        return MODEL_NAMES[self.key]


def _segmenter() -> ModelKind:
    from dimflow.segment import train as seg
    from dimflow.segment.model import StrokeSAGE

    def evaluate(model, split: Path) -> dict:
        return seg.evaluate(model, seg.load_split(split))

    return ModelKind("segmenter", "accuracy", seg.train, StrokeSAGE.load, evaluate, seg.SegmenterParams, resumes=True)


def _reader() -> ModelKind:
    from dimflow.read import train as rd
    from dimflow.read.model import CRNN

    def evaluate(model, split: Path) -> dict:
        return rd.evaluate(model, rd.load_crops(split))

    return ModelKind("reader", "exact_match", rd.train, CRNN.load, evaluate, rd.ReaderParams, resumes=True)


def _detector() -> ModelKind:
    from dimflow.detect import train as det
    from dimflow.detect.model import Detector

    def evaluate(model, split: Path) -> dict:
        return det.evaluate(model, split)

    return ModelKind("detector", "recall", det.train, Detector.load, evaluate, det.DetectorParams)


KINDS: dict[str, Callable[[], ModelKind]] = {"segmenter": _segmenter, "reader": _reader, "detector": _detector}


def get_kind(key: str) -> ModelKind:
    if key not in KINDS:
        raise KeyError(f"unknown model '{key}'; choose one of {', '.join(KINDS)}")
    return KINDS[key]()


def params_for(key: str, values: dict[str, Any]) -> Any:
    """A model's training parameters from plain values (params.yaml, a flow's parameters); an
    unknown name is refused, not ignored."""
    cls = get_kind(key).params
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{key}: unknown training parameter(s) {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(known))})")  # fmt: skip
    return cls(**values)


def fit(key: str, data_root: Path, params: Any, out: Path, progress=None) -> dict:
    """Train one model into the folder `out` (its files and metrics.json), outside the registry:
    the DVC pipeline's train stage. `out` is replaced only once the model is saved."""
    kind = get_kind(key)
    model, metrics = kind.train(data_root, params, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        folder = _save_trained(model, metrics, Path(tmp) / "model")
        if out.exists():
            shutil.rmtree(out)
        os.replace(folder, out)
    return metrics


def score(trained: Path, gate_split: Path, real: Path | None) -> dict[str, dict[str, float]]:
    """Metrics of a folder of trained models (`trained`/<role>, the shipped model where a role is
    missing): each model's own figures on the gate split, and the whole pipeline's value F1 there
    and on the labelled real sheets, read from their text layer and as rasters."""
    from dimflow import champions, gate

    folders = {role: trained / role if (trained / role).is_dir() else get_settings().baseline_dir / role
               for role in champions.ROLES}  # fmt: skip
    models = champions.models_at(folders)
    out: dict[str, dict[str, float]] = {}
    for role in champions.ROLES:
        figures = _flat(get_kind(role).evaluate(getattr(models, role), gate_split))
        out[role] = {"gate_metric": gate.model_metric(role, figures), **figures}
    names = ("gate_value_f1", "real_value_f1", "real_ocr_value_f1")
    out["pipeline"] = {n: v for n, v in zip(names, gate.pipeline_scores(models, gate_split, real), strict=True)
                       if v is not None}  # fmt: skip
    return {k: {m: round(v, 6) for m, v in figures.items()} for k, figures in out.items()}


def _save_trained(model: Any, metrics: dict, folder: Path) -> Path:
    """A trained model's folder: its own files and the metrics.json of its training."""
    model.save(folder)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str) + "\n")
    return folder


def _flat(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def checkpoint_path(name: str, dataset: str, params: Any) -> Path:
    """Where a training of these exact arguments keeps its epochs: the same training started again
    (a retried flow run, a restarted worker) finds it and resumes."""
    import hashlib

    key = hashlib.sha256(json.dumps([name, dataset, asdict(params)], sort_keys=True, default=str).encode())
    return get_settings().data_dir.resolve() / "checkpoints" / name / f"{key.hexdigest()[:20]}.pt"


def _trained_elsewhere_on(params: Any) -> str | None:
    """The training data of a run trained on another machine (`run_dir`, from scripts/gpu/), as its
    run.json names it (generator seed, indices, CAD share, windows): no local folder was trained on,
    so no local folder's hash may stand for it."""
    run_dir = getattr(params, "run_dir", None)
    if not run_dir:
        return None
    info_file = Path(run_dir) / "run.json"
    data = json.loads(info_file.read_text()).get("train_data") if info_file.is_file() else None
    if not data:
        return f"run:{Path(run_dir).resolve().name}"
    return "generated:" + ",".join(f"{k}={v}" for k, v in sorted(data.items()))


def training_splits(data_root: Path, params: Any) -> list[Path]:
    """The split folders a model trains on: `train`, and the extra ones its parameters name (the reader's
    CAD split); `params` is the parameters object or, from a model card, their dict."""
    extra = params.get("extra_train") if isinstance(params, dict) else getattr(params, "extra_train", None)
    return [data_root / s for s in ("train", *(extra or ()))]


def validation_splits(data_root: Path, params: Any) -> list[Path]:
    """The split folders a candidate is chosen and compared on: `val`, and the extra ones its parameters name."""
    return [data_root / s for s in ("val", *getattr(params, "extra_val", ()))]


def dataset_of(data_root: Path, params: Any) -> str:
    """The data version a training stands on: the train split's hash, `+` each extra split's."""
    return "+".join(registry.dataset_hash(p) for p in training_splits(data_root, params))


def train_and_register(key: str, data_root: Path, params: Any, progress=None, promote: bool = True) -> dict:
    """Train one model, log and register it as challenger, promote it if it beats the champion."""
    kind = get_kind(key)
    dataset = _trained_elsewhere_on(params) or dataset_of(data_root, params)
    resumable = {"checkpoint": checkpoint_path(kind.name, dataset, params)} if kind.resumes else {}
    with registry.training_run(kind.name) as (run_id, log_epoch):
        model, metrics = kind.train(data_root, params, progress=progress, on_epoch=log_epoch, **resumable)
        with tempfile.TemporaryDirectory() as tmp:
            folder = _save_trained(model, metrics, Path(tmp) / "model")
            reg = registry.log_and_register(
                kind.name,
                folder,
                {k: v for k, v in metrics["params"].items()},
                metrics["history"],
                _flat(metrics["val"]),
                dataset,
                alias=CHALLENGER,
                tags={"device": metrics.get("device", "cpu")},
                run_id=run_id,
            )
    if resumable:  # registered: an interrupted run of these arguments is over
        resumable["checkpoint"].unlink(missing_ok=True)
    result = {"name": kind.name, "version": reg.version, "val": metrics["val"], "promoted": False}
    if promote:
        result |= promote_if_better(key, validation_splits(data_root, params))
    return result


SPLIT_SLACK = 0.005  # how much worse than the champion one validation split may be when the mean is better


def promote_if_better(key: str, splits: Path | list[Path]) -> dict:
    """Evaluate challenger and champion on the same split(s); move `champion` if the challenger's
    mean over the splits is higher and no split is worse by more than `SPLIT_SLACK` (a gain on
    CAD-style sheets does not buy a loss on plain ones)."""
    kind = get_kind(key)
    splits = [splits] if isinstance(splits, Path) else list(splits)
    where = " + ".join(str(s) for s in splits)
    challenger_v = registry.version_by_alias(kind.name, CHALLENGER)
    if challenger_v is None:
        return {"promoted": False, "reason": "no challenger"}
    champion_v = registry.version_by_alias(kind.name, CHAMPION)

    def metric(version: int) -> list[float]:
        model = kind.load(registry.load(kind.name, version=version).path)
        return [float(kind.evaluate(model, s)[kind.metric]) for s in splits]

    chall_each = metric(challenger_v)
    chall = sum(chall_each) / len(chall_each)
    if champion_v is None:
        promote(kind.name, challenger_v, by="training", reason=f"first champion ({kind.metric} {chall:.4f} on {where})")
        return {"promoted": True, "challenger": chall, "champion": None}
    champ_each = metric(champion_v)
    champ = sum(champ_each) / len(champ_each)
    out = {"challenger": chall, "champion": champ}
    if len(splits) > 1:
        out |= {"challenger_each": chall_each, "champion_each": champ_each}
    worse = worse_splits(chall_each, champ_each)
    if chall > champ and not worse:
        promote(kind.name, challenger_v, by="training",
                reason=f"{kind.metric} {chall:.4f} > {champ:.4f} of {kind.name}/{champion_v} on {where}")  # fmt: skip
        return {"promoted": True, **out}
    if worse:
        named = ", ".join(str(splits[i]) for i in worse)
        out["reason"] = f"{kind.metric} worse than {kind.name}/{champion_v} by over {SPLIT_SLACK} on {named}"
    return {"promoted": False, **out}


def worse_splits(challenger: list[float], champion: list[float], slack: float = SPLIT_SLACK) -> list[int]:
    """The splits (indices) where the challenger falls more than `slack` below the champion."""
    return [i for i, (a, b) in enumerate(zip(challenger, champion, strict=True)) if a < b - slack]


# ------------------------------------------------------------------ champion moves (by hand or by a flow)

MOVE_TAG = "dimflow.champion."  # + the move's time in ms, zero-padded: one registered-model tag per move


class LifecycleError(RuntimeError):
    """A promotion or rollback that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class ChampionMove:
    """One change of a model's `champion` alias, as recorded on the registered model."""

    model: str
    action: str  # "promote" or "rollback"
    version: int  # the champion now
    replaced: int | None  # the champion before
    at: str  # ISO time, UTC
    by: str
    reason: str = ""

    def line(self) -> str:
        was = f"{self.replaced}" if self.replaced is not None else "none"
        return f"{self.at} {self.action} {self.model}: {was} -> {self.version} by {self.by}" + (
            f" ({self.reason})" if self.reason else "")  # fmt: skip


def model_name(name: str) -> str:
    """A registered model's name from itself or its role ("reader" -> "callout-reader")."""
    if name in MODEL_NAMES:
        return MODEL_NAMES[name]
    if name in MODEL_NAMES.values():
        return name
    roles = ", ".join(f"{k} ({v})" for k, v in MODEL_NAMES.items())
    raise LifecycleError(f"unknown model {name!r}: one of {roles}")


def moves(tags: dict[str, str]) -> list[ChampionMove]:
    """The champion moves recorded in a registered model's tags, oldest first."""
    return [ChampionMove(**json.loads(v)) for k, v in sorted(tags.items()) if k.startswith(MOVE_TAG)]


def _record(move: ChampionMove) -> ChampionMove:
    at_ms = int(datetime.fromisoformat(move.at).timestamp() * 1000)
    registry.set_model_tag(move.model, f"{MOVE_TAG}{at_ms:015d}", json.dumps(asdict(move)))
    registry.set_version_tag(move.model, move.version, f"champion_since_{at_ms}", f"{move.action} by {move.by}")
    return move


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def promote(name: str, version: int, by: str, reason: str = "") -> ChampionMove:
    """Make `version` the champion; the champion it replaces becomes `previous`, and a challenger
    alias on `version` is dropped. Recorded on the registered model (see `moves`)."""
    name = model_name(name)
    aliases, _ = registry.model_record(name)
    known = registry.versions(name)
    if version not in known:
        raise LifecycleError(f"{name} has no version {version} (versions: {sorted(known)})")
    current = aliases.get(CHAMPION)
    if current == version:
        raise LifecycleError(f"{name}/{version} is already the champion")
    registry.set_alias(name, CHAMPION, version)
    if current is not None:
        registry.set_alias(name, PREVIOUS, current)
    if aliases.get(CHALLENGER) == version:
        registry.delete_alias(name, CHALLENGER)
    return _record(ChampionMove(name, "promote", version, current, _now(), by, reason))


def rollback(name: str, by: str, reason: str = "") -> ChampionMove:
    """Champion back to `previous`. `previous` then becomes the champion that one replaced when it
    last became champion (none when unknown, or when that is the version rolled back from)."""
    name = model_name(name)
    aliases, tags = registry.model_record(name)
    back_to, current = aliases.get(PREVIOUS), aliases.get(CHAMPION)
    if back_to is None:
        raise LifecycleError(f"{name}: no previous champion to roll back to (no '{PREVIOUS}' alias)")
    registry.set_alias(name, CHAMPION, back_to)
    before = next((m.replaced for m in reversed(moves(tags)) if m.version == back_to), None)
    if before is not None and before not in (back_to, current):
        registry.set_alias(name, PREVIOUS, before)
    else:
        registry.delete_alias(name, PREVIOUS)
    move = _record(ChampionMove(name, "rollback", back_to, current, _now(), by, reason))
    if current is not None:
        registry.set_version_tag(name, current, "rolled_back_at", move.at)
    return move


def history(name: str) -> dict:
    """Every version of a model with its aliases, metrics, data and commit, and each champion move."""
    name = model_name(name)
    aliases, tags = registry.model_record(name)
    by_version: dict[int, list[str]] = {}
    for alias, v in sorted(aliases.items()):
        by_version.setdefault(v, []).append(alias)
    versions = [v | {"aliases": by_version.get(v["version"], [])} for v in registry.version_facts(name)]
    return {"model": name, "aliases": aliases, "versions": versions, "moves": moves(tags)}


def bootstrap(baseline: Path | None = None) -> dict[str, str]:
    """Register the shipped baseline models (settings' `baseline_dir`) as version 1 / champion where
    the registry lacks them. Only setup and deploy steps call this, never serving: a lookup that
    fails raises instead of reading as "absent", so a flaky registry cannot re-register a model."""
    baseline = baseline or get_settings().baseline_dir
    done = {}
    for key in KINDS:
        folder = baseline / key
        if not folder.is_dir():
            done[key] = "not shipped"
            continue
        if registry.version_by_alias(MODEL_NAMES[key], CHAMPION) is not None:  # no model code imported
            done[key] = "present"
            continue
        kind = get_kind(key)
        card = json.loads((folder / "metrics.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "model"
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("checksums.json", "*.md"))
            expected = json.loads((folder / "checksums.json").read_text())
            registry.verify(copy, expected)
            reg = registry.log_and_register(
                kind.name,
                copy,
                card.get("params", {}),
                card.get("history", []),
                _flat(card.get("test", {})),
                card.get("dataset", "shipped"),
                alias=CHAMPION,
                tags={"source": "models/baseline"},
            )
        done[key] = f"registered {reg.ref}"
    return done


def evaluate_champions(split: Path, keys: list[str] | None = None) -> dict[str, dict]:
    out = {}
    for key in keys or list(KINDS):
        kind = get_kind(key)
        reg = registry.load(kind.name, CHAMPION)
        metrics = kind.evaluate(kind.load(reg.path), split)
        out[key] = {"model": reg.ref, **metrics}
    return out


def export_baseline(key: str, test_split: Path, command: str, baseline: Path | None = None) -> Path:
    """Copy the champion into the shipped baseline with its model card and test metrics."""
    baseline = baseline or get_settings().baseline_dir
    kind = get_kind(key)
    reg = registry.load(kind.name, CHAMPION)
    train_metrics = json.loads((reg.path / "metrics.json").read_text())
    test = kind.evaluate(kind.load(reg.path), test_split)
    splits = training_splits(test_split.parent, train_metrics.get("params", {}))
    dest = baseline / key
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in reg.path.iterdir():
        if f.is_file() and f.name not in ("checksums.json", "metrics.json"):
            shutil.copy2(f, dest / f.name)
    card = {
        "model": kind.name,
        "registered_as": reg.ref,
        "command": command,
        "params": train_metrics.get("params", {}),
        "dataset": dataset_of(test_split.parent, train_metrics.get("params", {})),
        "test_split": str(test_split),
        "test_split_hash": registry.dataset_hash(test_split),
        "history": train_metrics.get("history", []),
        "val": {k: v for k, v in train_metrics.get("val", {}).items() if not isinstance(v, list)},
        "test": {k: v for k, v in test.items() if not isinstance(v, list)},
    }
    (dest / "metrics.json").write_text(json.dumps(card, indent=1, default=str) + "\n")
    (dest / "checksums.json").write_text(json.dumps(registry.checksums(dest), indent=1, sort_keys=True) + "\n")
    names = ", ".join(f"data/synth/{s.name}" for s in splits)
    data_line = f"`{card['dataset']}` (DVC hash of {names}, params.yaml)"
    if gen := train_metrics.get("train_data"):  # trained on drawings generated where it ran (GPU script)
        card["train_data"] = gen
        data_line = (
            f"{train_metrics.get('n_train_drawings')} drawings made by the generator on the training machine "
            f"(seed {gen['generator_seed']}, indices {gen['indices']}; the DVC train split `{card['dataset']}` "
            f"is the first {len(list((test_split.parent / 'train' / 'images').glob('*.png')))} of them)"
        )
    flat = "\n".join(f"| {k} | {v:.4f} |" for k, v in card["test"].items() if isinstance(v, float))
    (dest / "README.md").write_text(
        f"# {kind.name} (baseline)\n\nTrained with `{command}` and registered as `{reg.ref}`.\n\n"
        f"- training data: {data_line}\n"
        f"- test split: `{test_split}` (`{card['test_split_hash']}`)\n- device: {train_metrics.get('device')}\n\n"
        f"## Test metrics\n\n| metric | value |\n|---|---|\n{flat}\n\n"
        f"Parameters and per-epoch history are in `metrics.json`; file checksums in `checksums.json`.\n"
    )
    return dest
