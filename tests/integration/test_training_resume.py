"""A segmenter training killed after an epoch resumes from its checkpoint with the same
arguments and ends exactly where an uninterrupted training ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dimflow.segment.train import SegmenterParams, train
from tests.datasets import write_splits

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PARAMS = SegmenterParams(epochs=3, max_train=2, max_val=1, workers=1, hidden=32, layers=2)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_splits(tmp_path_factory.mktemp("resume"), train=(2, 41), val=(1, 42))


def test_an_interrupted_training_resumes_and_matches_an_uninterrupted_one(data: Path, tmp_path: Path) -> None:
    whole, whole_metrics = train(data, PARAMS)

    def kill_after_second(msg: str, done: int, total: int) -> None:
        if done == 2:
            raise Killed

    ck = tmp_path / "ck" / "seg.pt"
    with pytest.raises(Killed):
        train(data, PARAMS, progress=kill_after_second, checkpoint=ck)
    assert ck.is_file()
    seen: list[int] = []
    resumed, metrics = train(data, PARAMS, checkpoint=ck, on_epoch=lambda epoch, row: seen.append(epoch))
    assert seen == [0, 1, 2]  # the two restored epochs reported again, then the third trained
    assert [round(r["loss"], 6) for r in metrics["history"]] == [round(r["loss"], 6) for r in whole_metrics["history"]]
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_a_checkpoint_of_other_arguments_is_not_used(data: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from dimflow.lifecycle import checkpoint_path

    assert checkpoint_path("drawing-segmenter", "abc", PARAMS) == checkpoint_path("drawing-segmenter", "abc", PARAMS)
    assert checkpoint_path("drawing-segmenter", "abc", PARAMS) != checkpoint_path("drawing-segmenter", "abd", PARAMS)
    assert checkpoint_path("drawing-segmenter", "abc", PARAMS) != checkpoint_path(
        "drawing-segmenter", "abc", replace(PARAMS, epochs=4)
    )


def test_an_interrupted_reader_training_resumes_with_its_orientation_net(data: Path, tmp_path: Path) -> None:
    from dimflow.read.train import ReaderParams
    from dimflow.read.train import train as train_reader

    params = ReaderParams(epochs=2, max_train=16, max_val=4, batch_size=8, orient_epochs=1)
    whole, whole_metrics = train_reader(data, params)

    def kill_after_first(msg: str, done: int, total: int) -> None:
        if done == 1:
            raise Killed

    ck = tmp_path / "reader.pt"
    with pytest.raises(Killed):
        train_reader(data, params, progress=kill_after_first, checkpoint=ck)
    resumed, metrics = train_reader(data, params, checkpoint=ck)
    assert metrics["orientation_loss"] == []  # not trained again: restored from the checkpoint
    # the first epoch is the checkpoint's, bit for bit; the reader's LSTM steps after a resume differ
    # from an uninterrupted run's in the fifth significant digit (the segmenter's do not at all)
    assert metrics["history"][0]["loss"] == whole_metrics["history"][0]["loss"]
    assert metrics["history"][1]["loss"] == pytest.approx(whole_metrics["history"][1]["loss"], rel=1e-4)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-4), k
