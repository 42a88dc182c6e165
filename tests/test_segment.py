"""Box+point segmenters (docs/method.md section 4): GrabCut offline, SAM2 behind the same interface."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from regionreasoner.evaluate.metrics import decode_mask, mask_iou
from regionreasoner.evaluate.segment import (
    GrabCutSegmenter,
    RememberingSegmenter,
    encode_mask,
    make_segmenter,
    segment_objects,
)


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 112x112 synthetic scene like the embedded data: a red disc and a blue square on a grid."""
    image = np.zeros((112, 112, 3), dtype=np.uint8)
    for row in range(4):
        for col in range(4):
            image[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28] = (60 + 40 * col, 60 + 40 * row, 128)
    disc = np.zeros((112, 112), dtype=np.uint8)
    cv2.circle(disc, (42, 42), 10, 1, thickness=-1)
    square = np.zeros((112, 112), dtype=bool)
    square[60:80, 88:108] = True
    image[disc.astype(bool)] = (230, 20, 20)
    image[square] = (20, 20, 230)
    return image, disc.astype(bool), square


def test_grabcut_recovers_a_solid_shape_from_its_box_and_point():
    image, disc, _ = scene()
    mask = GrabCutSegmenter().segment(image, [28, 28, 56, 56], [42, 42])
    assert mask.dtype == bool and mask.shape == (112, 112)
    assert mask_iou(mask, disc) > 0.7


def test_grabcut_is_deterministic():
    image, _, _ = scene()
    segmenter = GrabCutSegmenter()
    assert np.array_equal(
        segmenter.segment(image, [28, 28, 56, 56], None), segmenter.segment(image, [28, 28, 56, 56], None)
    )


@pytest.mark.parametrize("box", [[-30, -30, -5, -5], [200, 200, 300, 300], [50, 50, 50, 80], [40.2, 40.7, 41.1, 41.5]])
def test_grabcut_handles_degenerate_or_outside_boxes(box):
    image, _, _ = scene()
    mask = GrabCutSegmenter().segment(image, box, [45, 45])
    assert mask.shape == (112, 112)
    assert mask.sum() <= 4  # nothing outside the clipped box, at most the box itself


def test_grabcut_with_a_whole_image_box_returns_a_mask():
    image, _, _ = scene()
    mask = GrabCutSegmenter().segment(image, [-10, -10, 130, 130], None)
    assert mask.shape == (112, 112) and mask.any()


class CountingGrabCut(GrabCutSegmenter):
    """GrabCut that counts the segmentations it computes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def segment(self, image, box, point):
        self.calls += 1
        return super().segment(image, box, point)


def test_a_repeated_object_is_segmented_once_with_the_same_mask():
    image, _, _ = scene()
    grabcut = CountingGrabCut()
    remembering = RememberingSegmenter(grabcut)
    first = remembering.segment(image, [28, 28, 56, 56], [42, 42])
    again = remembering.segment(image.copy(), [28.0, 28.0, 56.0, 56.0], [42, 42])
    assert grabcut.calls == 1
    assert np.array_equal(first, again)
    assert np.array_equal(first, GrabCutSegmenter().segment(image, [28, 28, 56, 56], [42, 42]))


def test_another_point_box_or_image_is_segmented_anew():
    image, _, _ = scene()
    grabcut = CountingGrabCut()
    remembering = RememberingSegmenter(grabcut)
    remembering.segment(image, [28, 28, 56, 56], [42, 42])
    remembering.segment(image, [28, 28, 56, 56], None)
    remembering.segment(image, [84, 56, 112, 84], None)
    other = image.copy()
    other[0, 0] = (0, 0, 0)
    remembering.segment(other, [28, 28, 56, 56], None)
    assert grabcut.calls == 4


def test_objects_of_a_turn_are_or_ed():
    image, disc, square = scene()
    segmenter = make_segmenter("grabcut")
    mask = segment_objects(segmenter, image, [[28, 28, 56, 56], [84, 56, 112, 84]], [[42, 42]])
    assert mask_iou(mask, disc | square) > 0.7
    assert not segment_objects(segmenter, image, [], []).any()


def test_encoded_mask_is_json_ready_and_round_trips():
    _, disc, _ = scene()
    rle = encode_mask(disc)
    assert isinstance(rle["counts"], str) and rle["size"] == [112, 112]
    assert np.array_equal(decode_mask(rle, 112, 112), disc)


def test_unknown_segmenter_is_refused():
    with pytest.raises(ValueError, match="grabcut"):
        make_segmenter("watershed")


@pytest.mark.skipif(importlib.util.find_spec("sam2") is not None, reason="sam2 is installed here")
def test_sam2_without_the_package_says_how_to_install_it():
    with pytest.raises(RuntimeError, match="pip install"):
        make_segmenter("sam2")
