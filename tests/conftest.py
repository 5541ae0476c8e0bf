"""Shared fixtures: a small synthetic dataset generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from dimflow.settings import get_settings
from dimflow.synth.dataset import write_dataset

# CI runs the same examples every time (a failure there must be reproducible); locally they vary
settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_dataset(out, n=8, seed=7, degrade_share=0.5)
    return out


@pytest.fixture
def local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder of the test's own: its MLflow store (sqlite), audit log and model downloads."""
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DIMFLOW_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DIMFLOW_AUDIT_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
