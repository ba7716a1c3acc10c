import numpy as np
import pytest

from tf_factorgan.data import palette
from tf_factorgan.eval import floors

CITYSCAPES = palette.cityscapes()
NAMES = CITYSCAPES.evaluated_names()
COLOURS = np.round(CITYSCAPES.evaluated_colours() * 255).astype(np.uint8)


def _maps(rows):
    """[N, 1, W] train ids -> uint8 [N, 1, W, 3] colour maps."""
    return COLOURS[np.array(rows)]


def test_floors_by_hand():
    road, sky, car = NAMES.index("road"), NAMES.index("sky"), NAMES.index("car")
    # Three training maps of 1 x 3 pixels: position 0 mostly sky, 1 and 2 mostly road.
    train = _maps([[[sky, road, road]], [[sky, car, road]], [[road, road, car]]])
    val = _maps([[[sky, road, car]], [[sky, car, car]]])
    result = floors.floors(train, val, CITYSCAPES)
    assert result["most_common_class"]["class"] == "road"
    # Road everywhere: only val pixel (0, 1) is road -> 1 of 6.
    assert result["most_common_class"]["pixel_accuracy"] == pytest.approx(1 / 6)
    # Per pixel: sky, road, road -> (sky ok, road ok, car no) + (sky ok, car no, car no) = 3/6.
    assert result["per_pixel_prior"]["pixel_accuracy"] == pytest.approx(3 / 6)


def test_ignored_training_pixels_are_not_counted():
    void = np.zeros((1, 1, 3, 3), np.uint8)  # "unlabeled" is black and ignored
    counts = floors.class_counts(np.concatenate([void, _maps([[[0, 0, 0]]])]), CITYSCAPES)
    assert counts.sum() == 3 and counts[0, :, 0].tolist() == [1, 1, 1]
