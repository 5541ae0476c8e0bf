"""Prefect tasks around the synthetic drawing generator."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from dimflow.synth import dataset


@task(task_run_name="synth {seed}:{start}+{n}")  # deterministic: a retry would fail the same way
def generate_shard(out: str, seed: int, start: int, n: int, degrade_share: float) -> int:
    """Write drawings start..start+n-1; rewriting a shard after a crash gives the same bytes."""
    records = dataset.write_drawings(Path(out), seed, range(start, start + n), degrade_share)
    return sum(r["meta"]["n_dimensions"] for r in records)


@task
def index_dataset(out: str) -> None:
    """Index the finished folder (crop strings, YOLO data file)."""
    dataset.finalize(Path(out))
