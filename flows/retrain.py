"""Scheduled retraining: data version -> train what changed -> gate against the champion -> promote or keep."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.train import apply_decision, champion_trained_on, data_version, gate_scores, train_candidate


@flow(name="retrain", log_prints=True)
def retrain(
    models: list[str] | None = None,
    data: str = "data/synth",
    gate: str = "data/synth/gate",
    real: str | None = "samples/real",
    margin: float = 0.002,
    params: dict[str, dict[str, Any]] | None = None,
    fine_tune: bool = True,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Retrain each model whose training data or code changed since its champion was trained (all
    with `force`), score candidate and champion on the gate split and the labelled real sheets,
    and promote only a candidate better by `margin` and no worse on the real sheets."""
    outcomes: list[dict[str, Any]] = []
    versions: dict[str, dict[str, str]] = {}
    for key in models or ["segmenter", "reader", "detector"]:
        current = versions[key] = data_version(data, key, (params or {}).get(key, {}))
        trained_on = champion_trained_on(key)
        if not force and trained_on == current:
            outcomes.append({"model": key, "decision": "skipped", "reason": "same data and code as its champion"})
            continue
        candidate = train_candidate(key, data, (params or {}).get(key, {}), fine_tune)
        champion = gate_scores(key, None, gate, real) if trained_on is not None else None
        scores = gate_scores(key, candidate["version"], gate, real)
        outcomes.append(apply_decision(key, candidate["version"], scores, champion, margin, current))
    lines = ["| model | decision | reason | candidate | champion |", "|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(f"| {o['model']} | {o['decision']} | {o['reason']} | {o.get('candidate', '')} "
                     f"| {o.get('champion', '')} |")  # fmt: skip
    lines += [f"\n{key} data {v['dataset']} at commit {v['commit']}" for key, v in versions.items()]
    create_markdown_artifact(markdown="\n".join(lines) + "\n", description="retrain decisions")
    for o in outcomes:
        print(f"{o['model']}: {o['decision']} ({o['reason']})")
    return outcomes
