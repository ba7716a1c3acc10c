"""Cityscapes label table, colour snapping and segmentation metrics on hand-made
maps."""

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan.eval import segmentation

ROAD = (128, 64, 128)
SIDEWALK = (244, 35, 232)
SKY = (70, 130, 180)
CAR = (0, 0, 142)
POLE = (153, 153, 153)
GROUND = (81, 0, 81)  # ignored


def _rgb(*colours) -> np.ndarray:
    """0..255 colours -> float32 [len, 3] in [0, 1]."""
    return np.array(colours, dtype=np.float32) / np.float32(255)


def test_label_table_has_all_ids_and_train_ids():
    classes = segmentation.CITYSCAPES_CLASSES
    assert len(classes) == 35
    assert sorted(c.id for c in classes) == list(range(-1, 34))
    evaluated = [c.train_id for c in classes if c.evaluated]
    assert sorted(evaluated) == list(range(19))
    ignored = {c.train_id for c in classes if not c.evaluated}
    assert ignored == {255, -1}
    by_name = {c.name: c for c in classes}
    assert by_name["car"].colour == by_name["license plate"].colour == CAR
    assert by_name["pole"].colour == by_name["polegroup"].colour == POLE
    assert (by_name["ground"].train_id, by_name["ground"].colour) == (255, GROUND)
    with pytest.raises(AttributeError):
        by_name["car"].train_id = 0  # frozen


def test_palettes():
    evaluated = segmentation.EVALUATED_PALETTE
    full = segmentation.FULL_PALETTE
    assert evaluated.dtype == full.dtype == np.float32
    assert evaluated.shape == (19, 3)
    # 35 classes minus 4 more blacks, polegroup and the license plate.
    assert full.shape == (29, 3)
    assert len(np.unique(full, axis=0)) == 29
    np.testing.assert_array_equal(full[:19], evaluated)
    np.testing.assert_array_equal(
        segmentation.FULL_PALETTE_IGNORED, np.arange(29) >= 19
    )
    np.testing.assert_allclose(evaluated[0], _rgb(ROAD)[0])
    np.testing.assert_allclose(evaluated[5], _rgb(POLE)[0])
    np.testing.assert_allclose(evaluated[13], _rgb(CAR)[0])
    np.testing.assert_allclose(evaluated[18], _rgb((119, 11, 32))[0])
    assert segmentation.EVALUATED_CLASS_NAMES[13] == "car"
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
        lambda x: segmentation.nearest_colour(x, segmentation.FULL_PALETTE),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    rgb = segmentation.FULL_PALETTE[[3, 28, 13, 5]].reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(serve(tf.constant(rgb)).numpy(), [[[3, 28], [13, 5]]])


def test_nearest_colour_rejects_bad_inputs():
    palette = segmentation.EVALUATED_PALETTE
    with pytest.raises(ValueError, match=r"rgb must have shape \[\.\.\., 3\]"):
        segmentation.nearest_colour(np.zeros((2, 4), np.float32), palette)
    with pytest.raises(ValueError, match="rgb must be float"):
        segmentation.nearest_colour(np.zeros((2, 3), np.uint8), palette)
    with pytest.raises(ValueError, match=r"palette must have shape \[K, 3\]"):
        segmentation.nearest_colour(np.zeros((2, 3), np.float32), np.zeros((0, 3)))


def test_train_ids_and_colourise_round_trip():
    ids = segmentation.train_ids(segmentation.EVALUATED_PALETTE)
    np.testing.assert_array_equal(ids.numpy(), np.arange(19))
    colours = segmentation.colourise(tf.range(19))
    assert colours.dtype == tf.float32
    np.testing.assert_array_equal(colours.numpy(), segmentation.EVALUATED_PALETTE)
    # Colours off by up to 0.02 per channel (JPEG-like) snap back to their class.
    rng = np.random.default_rng(0)
    noisy = np.clip(
        segmentation.EVALUATED_PALETTE + rng.uniform(-0.02, 0.02, (19, 3)), 0, 1
    )
    grid = segmentation.train_ids(noisy.reshape(1, 19, 1, 3))
    np.testing.assert_array_equal(grid.numpy().ravel(), np.arange(19))
    np.testing.assert_array_equal(
        segmentation.colourise(grid).numpy().reshape(19, 3),
        segmentation.EVALUATED_PALETTE,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="< 19"):
        segmentation.colourise(np.array([0, 19]))
    with pytest.raises(ValueError, match="train_ids must be integers"):
        segmentation.colourise(np.array([0.0]))


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
    classes = metrics["class_accuracy"]
    assert list(classes) == list(segmentation.EVALUATED_CLASS_NAMES)
    assert classes["road"] == 0.5
    assert classes["sky"] == classes["car"] == classes["pole"] == 1.0
    assert classes["sidewalk"] is None
    assert sum(v is None for v in classes.values()) == 15


def test_car_and_pole_colours_count_and_shared_ignored_classes_do_not_hide_them():
    # Ground truth car (= license plate colour) and pole (= polegroup colour), plus two
    # ignored-only colours (parking, unlabeled); prediction: car, bus, road, road.
    target = _rgb(CAR, POLE, (250, 170, 160), (0, 0, 0)).reshape(1, 1, 4, 3)
    predicted = _rgb(CAR, (0, 60, 100), ROAD, ROAD).reshape(1, 1, 4, 3)
    metrics = segmentation.segmentation_metrics(predicted, target)
    assert (metrics["evaluated_pixels"], metrics["ignored_pixels"]) == (2, 2)
    assert metrics["pixel_accuracy"] == 0.5
    assert metrics["class_accuracy"]["car"] == 1.0
    assert metrics["class_accuracy"]["pole"] == 0.0
    # Squared differences in 0..255 units: pole vs bus (153, 93, 53), parking vs road
    # (122, 106, 32), black vs road (128, 64, 128).
    expected_mse = (34867 + 27144 + 36864) / 255**2 / 12
    assert metrics["mse"] == pytest.approx(expected_mse, rel=1e-6)


def test_all_ignored_ground_truth_gives_no_accuracy():
    target = _rgb(GROUND, (0, 0, 0)).reshape(1, 1, 2, 3)
    metrics = segmentation.segmentation_metrics(target, target)
    assert metrics["pixel_accuracy"] is None
    assert (metrics["evaluated_pixels"], metrics["ignored_pixels"]) == (0, 2)
    assert metrics["mse"] == 0.0


def _random_maps(rng: np.random.Generator, count: int):
    """Noisy palette-coloured targets (all 29 colours) and random predictions."""
    full = segmentation.FULL_PALETTE
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
