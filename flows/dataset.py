"""Flow: generate a synthetic dataset split in parallel shards."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from tasks.synth import generate_shard, index_dataset


@flow(name="build-synthetic-dataset", log_prints=True)
def build_dataset(out: str, n: int = 50, seed: int = 1, degrade_share: float = 0.3, shard_size: int = 25) -> int:
    """Generate `n` drawings of `seed` into `out`; returns the number of dimensions written."""
    Path(out).mkdir(parents=True, exist_ok=True)
    starts = list(range(0, n, shard_size))
    sizes = [min(shard_size, n - s) for s in starts]
    shards = generate_shard.map(out, seed, starts, sizes, degrade_share)
    n_dims = sum(f.result() for f in shards)
    index_dataset(out, wait_for=shards)
    create_markdown_artifact(
        key="synthetic-dataset",
        markdown=(
            "# Synthetic dataset\n\n| drawings | dimensions | seed | folder |\n|---|---|---|---|\n"
            f"| {n} | {n_dims} | {seed} | `{out}` |\n"
        ),
        description="What build-synthetic-dataset wrote",
    )
    print(f"wrote {n} drawings with {n_dims} dimensions to {out}")
    return n_dims
