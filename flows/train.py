"""Training one model as a flow: data version -> train (fine-tuned from a registered version if
asked) -> register as challenger -> gate figures -> promote only through the gate, if asked."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.train import apply_decision, data_version, gate_scores, train_candidate


@flow(name="train-model", log_prints=True)
def train_model(
    model: str,
    data: str = "data/synth",
    params: dict[str, Any] | None = None,
    from_version: int | None = None,
    fine_tune: bool = False,
    gate: str = "data/synth/gate",
    real: str | None = "samples/real",
    promote: bool = False,
    margin: float = 0.002,
) -> dict[str, Any]:
    """Train `model` (detector, reader, segmenter) on `data`/train, picking epochs on `data`/val, with
    `params` (epochs, max_train, ...: the model's training parameters); register it as challenger
    and score it on the gate. With `promote`, the gate decides as in `retrain`."""
    current = data_version(data, model, params or {})
    candidate = train_candidate(model, data, params or {}, fine_tune, from_version)
    scores = gate_scores(model, candidate["version"], gate, real)
    out: dict[str, Any] = {"model": f"{candidate['name']}/{candidate['version']}", "gate": scores, **current,
                           "decision": "kept as challenger", "reason": "promotion not asked"}  # fmt: skip
    if promote:
        champion = gate_scores(model, None, gate, real)
        out |= apply_decision(model, candidate["version"], scores, champion, margin, current)
    text = f"**{out['model']}**: {out['decision']} ({out['reason']})\n\ngate: {scores}\n"
    create_markdown_artifact(markdown=text, description="training outcome")
    print(f"{out['model']}: {out['decision']} ({out['reason']}); gate {scores}")
    return out
