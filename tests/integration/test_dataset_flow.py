"""The dataset flow runs on a real (temporary) Prefect API and writes what `synth` writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from dimflow.synth.dataset import write_dataset
from flows.dataset import build_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_api():
    # a cold 2-core machine needs far longer than Prefect's default 20 s to start its API
    with prefect_test_harness(server_startup_timeout=180):
        yield


def _files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_sharded_flow_equals_one_shot_generation(prefect_api, tmp_path: Path) -> None:
    n_dims = build_dataset(out=str(tmp_path / "flow"), n=3, seed=5, shard_size=2)
    write_dataset(tmp_path / "cli", n=3, seed=5)
    assert n_dims > 0
    assert _files(tmp_path / "flow") == _files(tmp_path / "cli")
