"""Shared fixtures: a small synthetic dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimflow.synth.dataset import write_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, n=8, seed=7, degrade_share=0.5)
    return out
