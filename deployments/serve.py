"""Serve the processing flows from this process: the quickest way to run dimflow as a service
without work pools (`python -m deployments.serve`). Production uses prefect.yaml's deployments
on the `cpu` pool (`prefect deploy --all`, then `prefect worker start --pool cpu`).

Runs are then triggered from the Prefect UI, the API or `prefect deployment run
'process-drawing/process-drawing-local' -p path=/data/in/part-17.pdf`.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.process import process_batch, process_drawing


def deployments(limit: int = 2) -> list[RunnerDeployment]:
    """The two processing deployments, at most `limit` runs of each at once (models are shared)."""
    return [
        process_drawing.to_deployment(
            name="process-drawing-local", concurrency_limit=limit, tags=["process"],
            description="One drawing file -> contract JSON, ballooned PNG, inspection CSV.",
        ),
        process_batch.to_deployment(
            name="process-batch-local", concurrency_limit=1, tags=["process", "batch"],
            description="Many drawings, batched inference; bad files reported, the rest processed.",
        ),
    ]  # fmt: skip


if __name__ == "__main__":
    from dimflow.lifecycle import bootstrap

    bootstrap()  # the deploy step: register the shipped models where the registry has no champion
    serve(*deployments())
