"""Promotion and rollback as flows, so an ML engineer can move a champion from the Prefect UI; each
move is recorded on the registered model like the CLI's (`dimflow models promote/rollback`)."""

from __future__ import annotations

from dataclasses import asdict

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.train import lifecycle_task


@lifecycle_task
def _promote(model: str, version: int, reason: str) -> dict:
    from dimflow.lifecycle import promote

    return asdict(promote(model, version, by="prefect", reason=reason))


@lifecycle_task
def _rollback(model: str, reason: str) -> dict:
    from dimflow.lifecycle import rollback

    return asdict(rollback(model, by="prefect", reason=reason))


def _report(move: dict) -> dict:
    create_markdown_artifact(markdown=f"**{move['action']}** `{move['model']}`: {move['replaced']} -> "
                             f"{move['version']} ({move['reason']})", description="champion move")  # fmt: skip
    return move


@flow(name="promote-model", log_prints=True)
def promote_model(model: str, version: int, reason: str = "from the Prefect UI") -> dict:
    """Make a registered version the champion; the one it replaces becomes `previous`."""
    return _report(_promote(model, version, reason))


@flow(name="rollback-model", log_prints=True)
def rollback_model(model: str, reason: str = "from the Prefect UI") -> dict:
    """Put the `previous` champion back (fails, saying why, when there is none)."""
    return _report(_rollback(model, reason))
