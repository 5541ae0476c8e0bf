"""The `retrain` flow with tiny parameters, on Prefect's local API and a temporary MLflow store
holding the shipped models: a candidate better than its champion on the gate is promoted (the
old champion becomes `previous`), a worse one stays `challenger`, each decision recorded on the
version and in the run's artifact; unchanged data and code train nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimflow import lifecycle, registry
from tests.datasets import scrambled_segmenter, write_splits

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NAME = "drawing-segmenter"
TINY = {"epochs": 3, "max_train": 3, "max_val": 2, "workers": 1, "lr": 0.01}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_splits(tmp_path_factory.mktemp("retrain-data"), train=(3, 31), val=(2, 32), gate=(2, 33))


@pytest.fixture
def store(local_registry: Path) -> Path:
    lifecycle.bootstrap(ROOT / "models" / "baseline")
    return local_registry


def _crippled_champion(tmp_path: Path) -> int:
    """The shipped segmenter with its weights scrambled, made champion: a model any training beats."""
    reg = registry.log_and_register(NAME, scrambled_segmenter(tmp_path / "crippled"), {}, [], {}, "scrambled",
                                    alias=None)  # fmt: skip
    lifecycle.promote(NAME, reg.version, by="test", reason="a bad champion")
    return reg.version


def _gate_tag(version: int) -> dict:
    (facts,) = registry.version_facts(NAME, only=version)
    return json.loads(facts["tags"]["gate"])


def test_a_better_candidate_is_promoted_and_a_worse_one_kept(data: Path, store: Path) -> None:
    from flows.retrain import retrain

    bad = _crippled_champion(store)
    run = lambda **kw: retrain(models=["segmenter"], data=str(data), gate=str(data / "gate"), real=None,  # noqa: E731
                               params={"segmenter": TINY}, **kw)  # fmt: skip
    (better,) = run(fine_tune=False)  # from scratch, a few steps: better than scrambled weights
    assert better["decision"] == "promoted", better
    promoted = registry.version_by_alias(NAME, registry.CHAMPION)
    assert promoted not in (1, bad)
    assert registry.version_by_alias(NAME, registry.PREVIOUS) == bad
    assert _gate_tag(promoted)["candidate"]["metric"] > _gate_tag(promoted)["champion"]["metric"]

    lifecycle.promote(NAME, 1, by="test", reason="the shipped one back")  # a strong champion
    (worse,) = run(fine_tune=False, force=True)
    assert worse["decision"] == "kept as challenger", worse
    challenger = registry.version_by_alias(NAME, registry.CHALLENGER)
    assert registry.version_by_alias(NAME, registry.CHAMPION) == 1 and challenger not in (1, promoted)
    assert "not" in _gate_tag(challenger)["reason"] and _gate_tag(challenger)["dataset"]

    moves = lifecycle.history(NAME)["moves"]
    assert [(m.by, m.version) for m in moves][-2:] == [("retrain", promoted), ("test", 1)]


def test_unchanged_data_and_code_train_nothing(data: Path, store: Path) -> None:
    from flows.retrain import retrain

    first = retrain(models=["segmenter"], data=str(data), gate=str(data / "gate"), real=None,
                    params={"segmenter": TINY}, fine_tune=True, force=True)  # fmt: skip
    assert first[0]["decision"] in ("promoted", "kept as challenger")
    version = int(first[0]["model"].rsplit("/", 1)[1])
    if registry.version_by_alias(NAME, registry.CHAMPION) != version:  # a champion trained on this data and code
        lifecycle.promote(NAME, version, by="test")
    again = retrain(models=["segmenter"], data=str(data), gate=str(data / "gate"), real=None,
                    params={"segmenter": TINY})  # fmt: skip
    assert again == [{"model": "segmenter", "decision": "skipped", "reason": "same data and code as its champion"}]


def test_the_train_flow_fine_tunes_a_registered_version_and_leaves_the_champion(data: Path, store: Path) -> None:
    from flows.train import train_model

    out = train_model("segmenter", data=str(data), params=TINY, from_version=1, gate=str(data / "gate"), real=None)
    version = int(out["model"].rsplit("/", 1)[1])
    assert out["decision"] == "kept as challenger" and version == 2
    assert registry.version_by_alias(NAME, registry.CHALLENGER) == 2 and registry.version_by_alias(NAME) == 1
    assert out["gate"]["metric"] > 0.8  # fine-tuned from the shipped weights, not from scratch (~0.67 here)
    assert out["dataset"] == registry.dataset_hash(data / "train")
