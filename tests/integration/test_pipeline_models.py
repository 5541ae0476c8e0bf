"""Models for processing come from the registry by alias, load once per process, and fall back to
the previous version (saying so) when the champion cannot load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dimflow import pipeline, registry
from dimflow.lifecycle import BASELINE_DIR, bootstrap
from dimflow.settings import get_settings

pytestmark = [pytest.mark.integration]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (BASELINE_DIR / "detector" / "checksums.json").is_file():
        pytest.skip("the shipped baseline models are missing")
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DIMFLOW_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(pipeline, "_MODELS", None)
    monkeypatch.setattr(pipeline, "_LOADED_FOR", {})
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_models_load_once_and_are_reused(store: Path) -> None:
    first = pipeline.get_models()  # bootstraps the empty registry
    assert first.refs["detector"] == "drawing-detector/1" and "detector_note" not in first.refs
    assert pipeline.get_models() is first


def test_a_champion_that_fails_its_checksum_falls_back_to_the_previous_version(store: Path, tmp_path: Path) -> None:
    bootstrap()
    copy = tmp_path / "reader-v2"
    shutil.copytree(BASELINE_DIR / "reader", copy, ignore=shutil.ignore_patterns("checksums.json", "*.md"))
    card = json.loads((copy / "metrics.json").read_text())
    v2 = registry.log_and_register("callout-reader", copy, card["params"], [], {}, "test", alias=registry.CHAMPION)
    assert v2.version == 2
    local = registry.load("callout-reader", version=2).path  # the verified local copy ...
    weights = local / "reader.pt"
    weights.write_bytes(weights.read_bytes()[:-16] + b"\0" * 16)  # ... damaged on disk afterwards
    models = pipeline.get_models(reload=True)
    assert models.refs["recognizer"] == "callout-reader/1"
    assert "callout-reader/2" in models.refs["recognizer_note"] and "checksum" in models.refs["recognizer_note"].lower()
