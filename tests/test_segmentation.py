"""Colour snapping and segmentation metrics on hand-made maps, with the Cityscapes
palette and a small user palette (the label table itself: tests/test_palette.py)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.data import palette
from tf_factorgan.eval import segmentation

CITYSCAPES = palette.cityscapes()

ROAD = (128, 64, 128)
SIDEWALK = (244, 35, 232)
SKY = (70, 130, 180)
CAR = (0, 0, 142)
POLE = (153, 153, 153)
GROUND = (81, 0, 81)  # ignored


def _rgb(*colours) -> np.ndarray:
    """0..255 colours -> float32 [len, 3] in [0, 1]."""
    return np.array(colours, dtype=np.float32) / np.float32(255)


def test_palettes():
    evaluated = CITYSCAPES.evaluated_colours()
    full = CITYSCAPES.full_colours()
    assert evaluated.dtype == full.dtype == np.float32
    assert evaluated.shape == (19, 3)
    # 35 classes minus 4 more blacks, polegroup and the license plate.
    assert full.shape == (29, 3)
    assert len(np.unique(full, axis=0)) == 29
    np.testing.assert_array_equal(full[:19], evaluated)
    np.testing.assert_array_equal(
        CITYSCAPES.full_ignored(), np.arange(29) >= 19
    )
    np.testing.assert_allclose(evaluated[0], _rgb(ROAD)[0])
    np.testing.assert_allclose(evaluated[5], _rgb(POLE)[0])
    np.testing.assert_allclose(evaluated[13], _rgb(CAR)[0])
    np.testing.assert_allclose(evaluated[18], _rgb((119, 11, 32))[0])
    assert CITYSCAPES.evaluated_names()[13] == "car"
    # Every ignored-only colour is in the full palette as an ignored entry.
    ignored_rows = {tuple(np.round(c * 255).astype(int)) for c in full[19:]}
    assert ignored_rows == {
        (0, 0, 0), (111, 74, 0), GROUND, (250, 170, 160), (230, 150, 140),
        (180, 165, 180), (150, 100, 100), (150, 120, 90), (0, 0, 90), (0, 0, 110),
    }  # fmt: skip


def test_nearest_colour_picks_the_closest_and_the_lowest_index_on_ties():
    palette = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0]], np.float32)
    rgb = np.array(
        [
            [0.1, 0.2, 0.0],  # black
            [0.9, 0.6, 0.7],  # white: 0.01+0.16+0.09 = 0.26 vs red 0.01+0.36+0.49
            [0.6, 0.1, 0.1],  # red: 0.16+0.01+0.01 = 0.18 vs black 0.38
            [0.5, 0.5, 0.5],  # black and white tie at 0.75 (red 0.75 too): index 0
            [1.0, 0.5, 0.5],  # white and red tie at 0.5: index 1
        ],
        np.float64,  # any float dtype
    )
    indices = segmentation.nearest_colour(rgb, palette)
    assert indices.dtype == tf.int32
    np.testing.assert_array_equal(indices.numpy(), [0, 1, 2, 0, 1])


def test_nearest_colour_in_a_graph_with_unknown_shape():
    serve = tf.function(
        lambda x: segmentation.nearest_colour(x, CITYSCAPES.full_colours()),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    rgb = CITYSCAPES.full_colours()[[3, 28, 13, 5]].reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(serve(tf.constant(rgb)).numpy(), [[[3, 28], [13, 5]]])


def test_nearest_colour_rejects_bad_inputs():
    palette = CITYSCAPES.evaluated_colours()
    with pytest.raises(ValueError, match=r"rgb must have shape \[\.\.\., 3\]"):
        segmentation.nearest_colour(np.zeros((2, 4), np.float32), palette)
    with pytest.raises(ValueError, match="rgb must be float"):
        segmentation.nearest_colour(np.zeros((2, 3), np.uint8), palette)
    with pytest.raises(ValueError, match=r"palette must have shape \[K, 3\]"):
        segmentation.nearest_colour(np.zeros((2, 3), np.float32), np.zeros((0, 3)))


def test_train_ids_and_colourise_round_trip():
    ids = segmentation.train_ids(CITYSCAPES.evaluated_colours())
    np.testing.assert_array_equal(ids.numpy(), np.arange(19))
    colours = segmentation.colourise(tf.range(19))
    assert colours.dtype == tf.float32
    np.testing.assert_array_equal(colours.numpy(), CITYSCAPES.evaluated_colours())
    # Colours off by up to 0.02 per channel (JPEG-like) snap back to their class.
    rng = np.random.default_rng(0)
    noisy = np.clip(
        CITYSCAPES.evaluated_colours() + rng.uniform(-0.02, 0.02, (19, 3)), 0, 1
    )
    grid = segmentation.train_ids(noisy.reshape(1, 19, 1, 3))
    np.testing.assert_array_equal(grid.numpy().ravel(), np.arange(19))
    np.testing.assert_array_equal(
        segmentation.colourise(grid).numpy().reshape(19, 3),
        CITYSCAPES.evaluated_colours(),
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="< 19"):
        segmentation.colourise(np.array([0, 19]))
    with pytest.raises(ValueError, match="train_ids must be integers"):
        segmentation.colourise(np.array([0.0]))


def _per_class(metrics: dict, prefix: str) -> dict:
    """{class name: value} of the `<prefix>/<name>` metrics, in their order."""
    return {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith(prefix + "/")}


def _hand_example():
    """2x3 target with an ignored ground pixel, and a prediction with colours off by
    (0.03, 0.04, 0) in some order (squared error 0.0025 per pixel), a wrong pixel
    (sidewalk for road) and road on the ignored pixel."""
    target = _rgb(ROAD, SKY, CAR, GROUND, POLE, ROAD).reshape(1, 2, 3, 3)
    noise = np.array(
        [
            [0.03, -0.04, 0.0],
            [-0.04, 0.0, 0.03],
            [0.04, 0.03, 0.0],
            [0.0, 0.0, 0.0],
            [0.0, -0.03, 0.04],
            [0.0, 0.0, 0.0],
        ],
        np.float32,
    )
    predicted = _rgb(ROAD, SKY, CAR, ROAD, POLE, SIDEWALK) + noise
    return predicted.reshape(1, 2, 3, 3), target


def test_hand_computed_example():
    predicted, target = _hand_example()
    metrics = segmentation.segmentation_metrics(predicted, target)
    # Counted: road, sky, car, pole, road; all right but the sidewalk. The road
    # predicted on the ground pixel would make it 4/6 if it counted.
    assert metrics["pixel_accuracy"] == 4 / 5
    assert metrics["evaluated_pixels"] == 5
    assert metrics["ignored_pixels"] == 1
    assert metrics["num_images"] == 1
    # Four pixels at 0.0025; ground vs road (47, 64, 47)/255: 8514/255^2; road vs
    # sidewalk (116, -29, 104)/255: 25113/255^2; over 6 pixels x 3 channels.
    expected_mse = (4 * 0.0025 + (8514 + 25113) / 255**2) / 18
    assert metrics["mse"] == pytest.approx(expected_mse, rel=1e-6)
    assert metrics["mse"] == pytest.approx(0.029285, abs=1e-6)
    classes = _per_class(metrics, "class_accuracy")
    assert list(classes) == list(CITYSCAPES.evaluated_names())
    assert classes["road"] == 0.5
    assert classes["sky"] == classes["car"] == classes["pole"] == 1.0
    assert classes["sidewalk"] is None
    assert sum(v is None for v in classes.values()) == 15
    # Road 1 of 2 right, sky, car and pole right: (0.5 + 3) / 4 classes present.
    assert metrics["mean_class_accuracy"] == 0.875
    # IoU: road 1 / (2 + 1 - 1), sidewalk (predicted only) 0 / 1, sky, car, pole 1;
    # the road predicted on the ignored pixel is not counted.
    ious = _per_class(metrics, "iou")
    assert list(ious) == list(CITYSCAPES.evaluated_names())
    assert (ious["road"], ious["sidewalk"], ious["sky"], ious["car"], ious["pole"]) == (0.5, 0.0, 1.0, 1.0, 1.0)
    assert sum(v is None for v in ious.values()) == 14
    assert metrics["mean_iou"] == pytest.approx(3.5 / 5, rel=1e-12)


def test_car_and_pole_colours_count_and_shared_ignored_classes_do_not_hide_them():
    # Ground truth car (= license plate colour) and pole (= polegroup colour), plus two
    # ignored-only colours (parking, unlabeled); prediction: car, bus, road, road.
    target = _rgb(CAR, POLE, (250, 170, 160), (0, 0, 0)).reshape(1, 1, 4, 3)
    predicted = _rgb(CAR, (0, 60, 100), ROAD, ROAD).reshape(1, 1, 4, 3)
    metrics = segmentation.segmentation_metrics(predicted, target)
    assert (metrics["evaluated_pixels"], metrics["ignored_pixels"]) == (2, 2)
    assert metrics["pixel_accuracy"] == 0.5
    assert metrics["class_accuracy/car"] == 1.0
    assert metrics["class_accuracy/pole"] == 0.0
    # Car 1, pole 0 / 1, bus (predicted on the pole) 0 / 1.
    assert (metrics["iou/car"], metrics["iou/pole"], metrics["iou/bus"]) == (1.0, 0.0, 0.0)
    assert metrics["mean_iou"] == pytest.approx(1 / 3, rel=1e-12)
    # Squared differences in 0..255 units: pole vs bus (153, 93, 53), parking vs road
    # (122, 106, 32), black vs road (128, 64, 128).
    expected_mse = (34867 + 27144 + 36864) / 255**2 / 12
    assert metrics["mse"] == pytest.approx(expected_mse, rel=1e-6)


def test_all_ignored_ground_truth_gives_no_accuracy():
    target = _rgb(GROUND, (0, 0, 0)).reshape(1, 1, 2, 3)
    metrics = segmentation.segmentation_metrics(target, target)
    assert metrics["pixel_accuracy"] is None
    assert metrics["mean_class_accuracy"] is None and metrics["mean_iou"] is None
    assert (metrics["evaluated_pixels"], metrics["ignored_pixels"]) == (0, 2)
    assert metrics["mse"] == 0.0


def _random_maps(rng: np.random.Generator, count: int):
    """Noisy palette-coloured targets (all 29 colours) and random predictions."""
    full = CITYSCAPES.full_colours()
    target = full[rng.integers(len(full), size=(count, 6, 5))]
    target = np.clip(target + rng.uniform(-0.01, 0.01, target.shape), 0, 1)
    predicted = rng.uniform(0, 1, target.shape).astype(np.float32)
    return predicted, target.astype(np.float32)


def test_accumulating_two_batches_equals_one_call_on_both():
    rng = np.random.default_rng(1)
    predicted_a, target_a = _random_maps(rng, 3)
    predicted_b, target_b = _random_maps(rng, 2)
    accumulator = segmentation.SegmentationMetrics()
    accumulator.update(predicted_a, target_a)
    accumulator.update(predicted_b, target_b)
    accumulated = accumulator.result()
    whole = segmentation.segmentation_metrics(
        np.concatenate([predicted_a, predicted_b]), np.concatenate([target_a, target_b])
    )
    assert accumulated["mse"] == pytest.approx(whole["mse"], rel=1e-12)
    assert {k: v for k, v in accumulated.items() if k != "mse"} == {
        k: v for k, v in whole.items() if k != "mse"
    }
    assert whole["num_images"] == 5
    assert whole["evaluated_pixels"] + whole["ignored_pixels"] == 5 * 30
    # 19 of the 29 colours are evaluated.
    assert 0.4 < whole["evaluated_pixels"] / 150 < 0.9
    accumulator.reset()
    with pytest.raises(ValueError, match="call update"):
        accumulator.result()


def test_mean_squared_error_of_grey_images_over_batches():
    accumulator = segmentation.MeanSquaredError()
    accumulator.update(np.full((2, 3, 4, 1), 0.5), np.zeros((2, 3, 4, 1)))
    accumulator.update(np.ones((1, 3, 4, 1)), np.zeros((1, 3, 4, 1)))
    # 24 values of 0.25 and 12 of 1.0 over 3 images: 18 / 36.
    assert accumulator.result() == {"mse": pytest.approx(0.5), "num_images": 3}
    with pytest.raises(ValueError, match=r"same shape, got \(1, 3, 4, 1\) and \(1, 3, 4, 3\)"):
        accumulator.update(np.ones((1, 3, 4, 1)), np.ones((1, 3, 4, 3)))
    accumulator.reset()
    with pytest.raises(ValueError, match="call update"):
        accumulator.result()


def test_invalid_label_maps_are_rejected():
    maps = np.zeros((2, 4, 4, 3), np.float32)
    message = r"same shape, got \(2, 4, 4, 3\) and \(2, 4, 5, 3\)"
    with pytest.raises(ValueError, match=message):
        segmentation.segmentation_metrics(maps, np.zeros((2, 4, 5, 3), np.float32))
    with pytest.raises(ValueError, match=r"target must have shape \[N, H, W, 3\]"):
        segmentation.segmentation_metrics(maps, np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"predicted must lie in \[0, 1\]"):
        segmentation.segmentation_metrics(maps + 2.0, maps)
    with pytest.raises(ValueError, match="target must be float"):
        segmentation.segmentation_metrics(maps, maps.astype(np.uint8))


def test_class_ids_are_palette_ids():
    # Cityscapes: label ids (road 7, car 26, bicycle 33), not train ids.
    rgb = CITYSCAPES.evaluated_colours()[[0, 13, 18]].reshape(1, 1, 3, 3)
    ids = segmentation.class_ids(rgb + 0.01)
    assert ids.dtype == tf.int32
    np.testing.assert_array_equal(ids.numpy(), [[[7, 26, 33]]])
    np.testing.assert_array_equal(segmentation.class_ids(_rgb(*USER_COLOURS.values()), USER).numpy(), [5, 9, 3, 5])


# Three evaluated classes and an ignored one between them; ids in no particular order.
USER = palette.Palette((
    palette.LabelClass(5, "sea", (0, 0, 255), False),
    palette.LabelClass(0, "void", (0, 0, 0), True),
    palette.LabelClass(9, "land", (0, 255, 0), False),
    palette.LabelClass(3, "sand", (255, 255, 0), False),
))
USER_COLOURS = {"S": (0, 0, 255), "L": (0, 255, 0), "D": (255, 255, 0), "V": (0, 0, 0)}


def _user_map(rows: str, offset: float = 0.0) -> np.ndarray:
    """"SSLL/..." rows of USER_COLOURS letters -> float32 [1, H, W, 3] in [0, 1]."""
    grid = [[USER_COLOURS[c] for c in row] for row in rows.split("/")]
    return np.clip(np.array(grid, np.float32)[None] / 255 + offset, 0, 1).astype(np.float32)


def test_user_palette_metrics_on_a_hand_computed_4x4_map():
    target = _user_map("SSLL/SSLL/VVDD/SLDD")
    predicted = _user_map("SSLS/SLLL/SLDL/SLLD", offset=0.1)  # off-palette, still nearest
    metrics = segmentation.SegmentationMetrics(USER)
    metrics.update(predicted, target)
    # Rows: truth sea, land, sand; columns: predicted. The two void pixels do not count.
    np.testing.assert_array_equal(metrics.confusion_matrix(), [[4, 1, 0], [1, 4, 0], [0, 2, 2]])
    result = metrics.result()
    assert (result["evaluated_pixels"], result["ignored_pixels"], result["num_images"]) == (14, 2, 1)
    assert result["pixel_accuracy"] == 10 / 14
    assert _per_class(result, "class_accuracy") == {"sea": 0.8, "land": 0.8, "sand": 0.5}
    assert result["mean_class_accuracy"] == pytest.approx(0.7, rel=1e-12)
    # IoU = diagonal / (row + column - diagonal): sea 4 / (5 + 5 - 4), land 4 / (5 + 7 - 4),
    # sand 2 / (4 + 2 - 2).
    assert _per_class(result, "iou") == {"sea": 4 / 6, "land": 0.5, "sand": 0.5}
    assert result["mean_iou"] == pytest.approx(5 / 9, rel=1e-12)
    assert set(result) == {
        "mse", "pixel_accuracy", "mean_class_accuracy", "mean_iou", "evaluated_pixels", "ignored_pixels",
        "num_images", "class_accuracy/sea", "class_accuracy/land", "class_accuracy/sand", "iou/sea",
        "iou/land", "iou/sand",
    }
    # Train ids index the evaluated classes in file order: sea 0, land 1, sand 2.
    np.testing.assert_array_equal(segmentation.train_ids(target, USER).numpy()[0, 3], [0, 1, 2, 2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="< 3"):
        segmentation.colourise(np.array([3]), USER)
