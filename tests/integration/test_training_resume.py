"""A segmenter training killed after an epoch resumes from its checkpoint with the same
arguments and ends exactly where an uninterrupted training ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dimflow.segment.train import SegmenterParams, train
from dimflow.synth.dataset import write_dataset

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PARAMS = SegmenterParams(epochs=3, max_train=2, max_val=1, workers=1, hidden=32, layers=2)


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    write_dataset(root / "train", n=2, seed=41)
    write_dataset(root / "val", n=1, seed=42)
    return root


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
