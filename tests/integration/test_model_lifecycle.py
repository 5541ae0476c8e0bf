"""Each model trains a few steps on generated drawings, registers in a temporary MLflow store,
loads back by alias with its checksums verified, and is promoted only when it wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimflow import registry
from dimflow.detect.train import DetectorParams
from dimflow.lifecycle import get_kind, promote_if_better, train_and_register
from dimflow.read.train import ReaderParams
from dimflow.segment.train import SegmenterParams
from dimflow.settings import get_settings
from tests.datasets import write_splits

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_splits(tmp_path_factory.mktemp("data"), train=(3, 11), val=(2, 12))


@pytest.fixture
def store(local_registry: Path) -> Path:
    return local_registry


@pytest.mark.parametrize(
    ("key", "params"),
    [
        ("segmenter", SegmenterParams(epochs=2, max_train=3, max_val=2, workers=1)),
        ("reader", ReaderParams(epochs=1, max_train=24, max_val=8, batch_size=8)),
        ("detector", DetectorParams(epochs=1, imgsz=320, batch=2, max_train=3, max_val=2, workers=0, resume=False)),
    ],
)
def test_train_register_load_by_alias(key: str, params, data_root: Path, store: Path) -> None:
    result = train_and_register(key, data_root, params)
    kind = get_kind(key)
    assert result["version"] == 1 and result["promoted"]
    assert registry.tracking_uri().startswith(f"sqlite:///{store}")
    champ = registry.load(kind.name, registry.CHAMPION)
    assert champ.version == 1
    model = kind.load(champ.path)
    metrics = kind.evaluate(model, data_root / "val")
    assert 0.0 <= metrics[kind.metric] <= 1.0
    _, client = registry._client()  # each epoch reached MLflow, under the run the version points to
    run_id = client.get_model_version(kind.name, "1").run_id
    loss = {"segmenter": "loss", "reader": "loss", "detector": "train_box_loss"}[key]
    assert [m.step for m in client.get_metric_history(run_id, loss)] == list(range(params.epochs))

    # a second, identical-quality run becomes challenger but does not displace the champion
    result2 = train_and_register(key, data_root, params, promote=False)
    assert result2["version"] == 2
    assert registry.version_by_alias(kind.name, registry.CHALLENGER) == 2
    decision = promote_if_better(key, data_root / "val")
    assert decision["promoted"] == (decision["challenger"] > decision["champion"])


def test_reader_trains_on_extra_splits_and_is_compared_on_each(data_root: Path, store: Path, tmp_path: Path) -> None:
    """The CAD-style splits join the reader's training and validation, stand in its data version, and
    the champion is compared on every validation split."""
    from dimflow.synth.dataset import write_dataset

    for name, seed in (("cad_train", 21), ("cad_val", 22)):
        if not (data_root / name).is_dir():
            write_dataset(data_root / name, n=1, seed=seed, cad=True)
    params = ReaderParams(epochs=1, max_train=8, max_val=4, batch_size=8, extra_train=["cad_train"],
                          extra_val=["cad_val"])  # fmt: skip
    result = train_and_register("reader", data_root, params)
    n_cad = min(8, sum('"dimension"' in line for line in (data_root / "cad_train/crops/index.jsonl").open()))
    assert n_cad > 0 and result["val"]["n_crops"] == 4 + min(4, n_cad)
    (facts,) = registry.version_facts("callout-reader", only=result["version"])
    assert facts["dataset"] == "+".join(registry.dataset_hash(data_root / s) for s in ("train", "cad_train"))

    train_and_register("reader", data_root, params, promote=False)
    decision = promote_if_better("reader", [data_root / "val", data_root / "cad_val"])
    assert len(decision["challenger_each"]) == len(decision["champion_each"]) == 2

    with pytest.raises(FileNotFoundError, match="no_such_split has no crops"):
        train_and_register("reader", data_root, ReaderParams(epochs=1, max_train=8, extra_train=["no_such_split"]))


def test_tampered_weights_are_refused(data_root: Path, store: Path) -> None:
    train_and_register("segmenter", data_root, SegmenterParams(epochs=1, max_train=2, max_val=1, workers=1))
    loaded = registry.load("drawing-segmenter", registry.CHAMPION)
    weights = next(p for p in loaded.path.iterdir() if p.suffix == ".pt")
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(registry.ChecksumError, match="differs"):
        registry.load("drawing-segmenter", registry.CHAMPION)


def test_missing_alias_is_a_clear_error(store: Path) -> None:
    with pytest.raises(registry.RegistryError, match="no alias 'champion'"):
        registry.load("drawing-segmenter", registry.CHAMPION)


def test_ultralytics_is_offline(store: Path) -> None:
    """No font, weight or telemetry look-ups: the switches ultralytics itself reads are set."""
    from dimflow.detect.yolo_env import offline

    offline()
    from ultralytics.utils import SETTINGS, is_online
    from ultralytics.utils.checks import check_font

    assert is_online() is False
    assert SETTINGS.get("sync") is False and SETTINGS.get("mlflow") is False
    font = str(check_font("Arial.ttf"))
    assert font.endswith("Arial.ttf") and Path(font).is_file()


def test_bootstrap_registers_the_shipped_set_once(store: Path) -> None:
    from dimflow.lifecycle import bootstrap

    first = bootstrap()
    for key in ("segmenter", "reader"):
        if (get_settings().baseline_dir / key / "checksums.json").is_file():
            assert first[key] == f"registered {registry.MODEL_NAMES[key]}/1"
            assert registry.version_by_alias(registry.MODEL_NAMES[key], registry.CHAMPION) == 1
            assert registry.load(registry.MODEL_NAMES[key]).version == 1
    assert all(state in ("present", "not shipped") for state in bootstrap().values())


def test_a_run_that_breaks_keeps_its_epochs_in_a_failed_run(
    data_root: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dimflow.segment import train as seg

    real, calls = seg.evaluate, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(seg, "evaluate", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        train_and_register("segmenter", data_root, SegmenterParams(epochs=3, max_train=2, max_val=1, workers=1))
    _, client = registry._client()
    (run,) = client.search_runs([client.get_experiment_by_name("drawing-segmenter").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0]
    assert registry.version_by_alias("drawing-segmenter", registry.CHAMPION) is None
