"""Models for processing come from the registry by alias, load once per process, and fall back to
the previous version (saying so) when the champion cannot load; serving never registers models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dimflow import champions, registry
from dimflow.lifecycle import bootstrap
from dimflow.settings import get_settings

BASELINE_DIR = get_settings().baseline_dir

pytestmark = [pytest.mark.integration]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (BASELINE_DIR / "detector" / "checksums.json").is_file():
        pytest.skip("the shipped baseline models are missing")
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DIMFLOW_MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(champions, "_MODELS", None)
    monkeypatch.setattr(champions, "_LOADED_FOR", {})
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_an_empty_registry_is_an_error_not_a_bootstrap(store: Path) -> None:
    with pytest.raises(registry.RegistryError, match="dimflow models bootstrap"):
        champions.get_models()
    assert registry.versions("drawing-detector") == []  # serving registered nothing


def test_models_load_once_and_are_reused(store: Path) -> None:
    bootstrap()
    first = champions.get_models()
    assert first.refs["detector"] == "drawing-detector/1" and "detector_note" not in first.refs
    assert champions.get_models() is first


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
    models = champions.get_models(reload=True)
    assert models.refs["reader"] == "callout-reader/1"
    assert "callout-reader/2" in models.refs["reader_note"] and "checksum" in models.refs["reader_note"].lower()
