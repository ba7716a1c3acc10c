import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.data import palette
from tf_factorgan.data.label_encoding import LabelEncoding, encode_numpy

CITYSCAPES = palette.cityscapes()
ROAD, SKY = (128, 64, 128), (70, 130, 180)
VOID = (0, 0, 0)  # the colour of the ignored class "unlabeled"


def _map(*colours):
    return np.array([colours], np.uint8)  # [1, len, 3]


def test_one_hot_maps_have_a_channel_per_evaluated_class_and_void():
    encoding = LabelEncoding(CITYSCAPES, "one_hot")
    assert encoding.num_classes == 19 and encoding.has_void and encoding.channels == 20
    assert encoding.output_activation == "softmax"
    # A JPEG-like colour near road still encodes as road.
    near_road = (130, 62, 127)
    maps = encode_numpy(encoding, _map(ROAD, SKY, VOID, near_road)[None])
    names = CITYSCAPES.evaluated_names()
    assert maps.shape == (1, 1, 4, 20)
    assert [int(np.argmax(v)) for v in maps[0, 0]] == [names.index("road"), names.index("sky"), 19,
                                                       names.index("road")]
    np.testing.assert_array_equal(maps.sum(axis=-1), 1.0)


def test_classes_and_colours_of_each_form():
    one_hot = LabelEncoding(CITYSCAPES, "one_hot")
    probabilities = np.zeros((1, 2, 20), np.float32)
    probabilities[0, 0, 2], probabilities[0, 0, 19] = 0.3, 0.7  # void never wins
    probabilities[0, 1, 10] = 1.0
    np.testing.assert_array_equal(one_hot.train_ids(probabilities).numpy(), [[2, 10]])
    np.testing.assert_allclose(one_hot.to_rgb(probabilities).numpy(),
                               CITYSCAPES.evaluated_colours()[[[2, 10]]])
    np.testing.assert_allclose(one_hot.class_probabilities(probabilities).numpy()[0, 0, 2], 1.0)
    rgb = LabelEncoding(CITYSCAPES)
    assert rgb.channels == 3 and rgb.output_activation == "sigmoid"
    colours = np.array([[ROAD, SKY]], np.float32) / 255
    np.testing.assert_array_equal(rgb.encode(colours).numpy(), colours)
    names = CITYSCAPES.evaluated_names()
    np.testing.assert_array_equal(rgb.train_ids(colours).numpy(), [[names.index("road"), names.index("sky")]])
    with pytest.raises(ValueError, match="one_hot"):
        rgb.class_probabilities(colours)
    with pytest.raises(ValueError, match="label_encoding"):
        LabelEncoding(CITYSCAPES, "indices")


def test_a_palette_without_ignored_classes_has_no_void():
    classes = (palette.LabelClass(0, "a", (255, 0, 0)), palette.LabelClass(1, "b", (0, 0, 255)))
    encoding = LabelEncoding(palette.Palette(classes), "one_hot")
    assert encoding.channels == 2 and not encoding.has_void
    maps = encoding.encode(tf.constant([[[1.0, 0.0, 0.1]]])).numpy()
    np.testing.assert_array_equal(maps, [[[1.0, 0.0]]])
