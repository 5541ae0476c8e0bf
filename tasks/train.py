"""Prefect tasks of the model lifecycle: each calls `dimflow.lifecycle`, `dimflow.gate` or the registry.

Retries only on infrastructure failures (the registry or storage not answering, a connection
dropped): training on bad data or a model that does not build fails the same way every time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from dimflow import gate, lifecycle, registry
from dimflow.storage import StorageError

INFRASTRUCTURE = (registry.RegistryUnavailable, StorageError, ConnectionError, TimeoutError)


def _infrastructure_only(task, task_run, state) -> bool:
    """Retry a task only when what failed was the machinery around it."""
    try:
        state.result()
    except INFRASTRUCTURE:
        return True
    except Exception:
        return False
    return False


lifecycle_task = task(retries=2, retry_delay_seconds=10, retry_condition_fn=_infrastructure_only, cache_policy=NO_CACHE)


def _gpu_slot():
    """On a GPU worker, one slot of the `gpu` global concurrency limit (`dimflow pools setup`) for
    the training; a limit that does not exist does not hold it up. On the CPU: nothing to take."""
    import contextlib

    from dimflow.devices import pick_device

    if pick_device() != "cuda":
        return contextlib.nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency("gpu", occupy=1, strict=False)


@lifecycle_task
def data_version(data: str, key: str | None = None, params: dict[str, Any] | None = None) -> dict[str, str]:
    """What a candidate would be trained on: the DVC-style hash of its training splits (`train`,
    and the extra ones `params` name for `key`) and the code's commit."""
    training = lifecycle.params_for(key, params or {}) if key else None
    return {"dataset": lifecycle.dataset_of(Path(data), training), "commit": registry.git_commit()}


@lifecycle_task
def champion_trained_on(key: str) -> dict[str, str] | None:
    """The data hash and commit the current champion was trained on (None: no champion)."""
    name = lifecycle.model_name(key)
    version = registry.version_by_alias(name, registry.CHAMPION)
    if version is None:
        return None
    (facts,) = registry.version_facts(name, only=version)
    return {"dataset": facts["dataset"] or "", "commit": facts["commit"] or ""}


@lifecycle_task
def train_candidate(key: str, data: str, params: dict[str, Any], fine_tune: bool = True,
                    from_version: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Train one model, register it as `challenger`; the champion does not move here. It starts
    from registered weights where the model supports it (reader, segmenter): `from_version`, else
    the champion's when `fine_tune`. Progress shows as an artifact."""
    p = lifecycle.params_for(key, params)
    name = lifecycle.model_name(key)
    if hasattr(p, "init") and from_version is not None:
        p.init = str(registry.load(name, version=from_version).path)
    elif hasattr(p, "init") and fine_tune and registry.version_by_alias(name) is not None:
        p.init = str(registry.load(name, registry.CHAMPION).path)
    artifact = create_progress_artifact(progress=0.0, description=f"training {key}")

    def progress(msg: str, done: int, total: int) -> None:
        if total:
            update_progress_artifact(artifact, progress=min(100.0, 100.0 * done / total))

    with _gpu_slot():
        result = lifecycle.train_and_register(key, Path(data), p, progress=progress, promote=False)
    update_progress_artifact(artifact, progress=100.0)
    return {"name": result["name"], "version": result["version"], "fine_tuned": bool(getattr(p, "init", None))}


@lifecycle_task
def gate_scores(key: str, version: int | None, gate_split: str, real: str | None) -> dict[str, float | None]:
    """A version's gate figures (the champion's when `version` is None), the other roles served by
    their champions."""
    from dimflow import champions

    kind = lifecycle.get_kind(key)
    reg = registry.load(kind.name, registry.CHAMPION) if version is None else registry.load(kind.name, version=version)
    model = champions.on_device(kind.load(reg.path))
    scores = gate.gate_scores(key, model, reg.ref, champions.get_models(), Path(gate_split),
                              Path(real) if real else None)  # fmt: skip
    get_run_logger().info("%s gate: %s", reg.ref, scores.row())
    return scores.row()


@lifecycle_task
def apply_decision(key: str, version: int, candidate: dict, champion: dict | None, margin: float,
                   trained_on: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    """Promote the candidate or leave it `challenger`; either way the decision, both metric sets,
    the data hash and the commit go on its version in MLflow."""
    decision = gate.decide(gate.GateScores(**candidate), gate.GateScores(**champion) if champion else None, margin)
    name = lifecycle.model_name(key)
    record = {"decision": "promoted" if decision.promote else "kept as challenger", "reason": decision.reason,
              "candidate": candidate, "champion": champion, "margin": margin, **trained_on}  # fmt: skip
    registry.set_version_tag(name, version, "gate", json.dumps(record, sort_keys=True))
    if decision.promote:
        lifecycle.promote(name, version, by="retrain", reason=decision.reason)
    return {"model": f"{name}/{version}", **record}
