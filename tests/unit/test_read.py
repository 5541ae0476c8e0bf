"""The reader's crop geometry: stacked tolerances are found whatever the ink's gray."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dimflow.read.model import INK, find_stack, ink_level, unstack


def stacked_crop(ink: int) -> np.ndarray:
    """`40` then `+0.1` over `-0.2`, as a CAD export draws a deviation stack, in gray `ink` on white."""
    img = np.full((60, 170), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "40", (5, 45), font, 1.2, ink, 2, cv2.LINE_AA)
    cv2.putText(img, "+0.1", (70, 24), font, 0.7, ink, 1, cv2.LINE_AA)
    cv2.putText(img, "-0.2", (70, 52), font, 0.7, ink, 1, cv2.LINE_AA)
    return img


def test_black_ink_keeps_the_fixed_level() -> None:
    assert ink_level(stacked_crop(0)) == INK
    assert ink_level(np.full((20, 40), 255, np.uint8)) == INK  # nothing on it
    assert ink_level(np.zeros((0, 0), np.uint8)) == INK


@pytest.mark.parametrize("ink", [0, 76, 150])
def test_a_stack_is_found_in_any_ink_a_colour_export_is_printed_in(ink: int) -> None:
    crop = stacked_crop(ink)
    found = find_stack(crop)
    assert found is not None and 60 <= found[0] <= 72 and 24 <= found[1] <= 36, found
    assert unstack(crop).shape[0] < 0.7 * crop.shape[0]  # laid out on one line
    if ink >= INK:  # what a fixed level missed: light ink is not ink to it
        assert find_stack(crop, INK) is None


def test_light_ink_is_ink_but_paper_noise_is_not() -> None:
    crop = stacked_crop(150)
    level = ink_level(crop)
    assert 150 < level < 230
    noisy = np.clip(crop.astype(int) + np.random.default_rng(0).normal(0, 6, crop.shape), 0, 255).astype(np.uint8)
    assert find_stack(noisy) is not None


def solidworks_stack() -> np.ndarray:
    """`7.50` on the lower deviation's line, `+0.10` over `-0.20` beside it, a dimension line under
    all of it: how SOLIDWORKS exports a stacked tolerance."""
    img = np.full((70, 200), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "7.50", (4, 58), font, 0.8, 0, 2, cv2.LINE_AA)
    cv2.putText(img, "+0.10", (100, 26), font, 0.8, 0, 2, cv2.LINE_AA)
    cv2.putText(img, "-0.20", (100, 58), font, 0.8, 0, 2, cv2.LINE_AA)
    cv2.line(img, (0, 66), (199, 66), 0, 1)
    return img


def test_a_nominal_on_the_lower_line_is_the_main_text_not_part_of_the_stack() -> None:
    crop = solidworks_stack()
    found = find_stack(crop)
    assert found is not None and 70 < found[0] <= 102, found  # the stack starts at `+0.10`, after `7.50`
    assert unstack(crop).shape[0] < 0.7 * crop.shape[0]


def test_a_right_aligned_lower_deviation_is_still_a_stack() -> None:
    img = np.full((60, 170), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, "40", (5, 45), font, 1.2, 0, 2, cv2.LINE_AA)
    cv2.putText(img, "+0.05", (70, 24), font, 0.7, 0, 1, cv2.LINE_AA)
    cv2.putText(img, "0", (118, 52), font, 0.7, 0, 1, cv2.LINE_AA)
    found = find_stack(img)
    assert found is not None and 60 <= found[0] <= 72, found
