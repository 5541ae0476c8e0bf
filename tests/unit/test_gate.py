"""The promotion gate's rule: better by the margin on the model's own metric, and no worse on the
gate pipeline or the real sheets; the detector is gated on F1, not recall."""

from __future__ import annotations

import pytest

from dimflow.gate import GateScores, decide, model_metric


def test_the_detector_is_gated_on_f1() -> None:
    assert model_metric("detector", {"recall": 1.0, "precision": 0.5}) == pytest.approx(2 / 3)
    assert model_metric("detector", {"recall": 0.0, "precision": 0.0}) == 0.0
    assert model_metric("reader", {"exact_match": 0.97, "loss": 3.0}) == 0.97


CHAMP = GateScores(metric=0.95, gate_f1=0.97, real_f1=1.0, real_ocr_f1=0.8)


@pytest.mark.parametrize(
    ("cand", "promote", "why"),
    [
        (GateScores(0.96, 0.97, 1.0, 0.8), True, "beats"),
        (GateScores(0.951, 0.98, 1.0, 0.9), False, "not 0.002 better"),
        (GateScores(0.99, 0.99, 0.96, 0.9), False, "real-sheet F1 (text layer)"),
        (GateScores(0.99, 0.99, 1.0, 0.7), False, "real-sheet F1 (OCR)"),
        (GateScores(0.99, 0.90, 1.0, 0.8), False, "gate pipeline F1"),
        (GateScores(0.99, 0.99, None, None), True, "beats"),  # no real set given: the gate split decides
    ],
)
def test_decide(cand: GateScores, promote: bool, why: str) -> None:
    d = decide(cand, CHAMP, margin=0.002)
    assert d.promote == promote and why in d.reason


def test_a_first_model_is_promoted() -> None:
    assert decide(CHAMP, None, 0.01).promote


def test_training_parameters_by_name_and_an_unknown_one_refused() -> None:
    from dimflow.lifecycle import params_for

    p = params_for("segmenter", {"epochs": 2, "lr": 0.01})
    assert (p.epochs, p.lr, p.hidden) == (2, 0.01, 96)
    with pytest.raises(ValueError, match=r"unknown training parameter.*epoch"):
        params_for("reader", {"epoch": 2})


def test_a_reader_is_compared_split_by_split() -> None:
    """A gain on CAD-style sheets does not buy a loss on plain ones: the splits worse than slack are named."""
    from dimflow.lifecycle import SPLIT_SLACK, params_for, worse_splits

    assert worse_splits([0.99, 0.98], [0.99, 0.96]) == []
    assert worse_splits([0.97, 0.99], [0.99, 0.96]) == [0]  # better on the mean, worse on plain val
    assert worse_splits([0.99 - SPLIT_SLACK / 2], [0.99]) == []  # within noise
    p = params_for("reader", {"extra_train": ["cad_train"], "extra_val": ["cad_val"]})
    assert (p.extra_train, p.extra_val) == (["cad_train"], ["cad_val"])
    assert params_for("reader", {}).extra_train == []  # plain unless asked
