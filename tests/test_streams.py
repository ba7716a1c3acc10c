import numpy as np
import tensorflow as tf

from tf_factorgan.data import streams


def test_index_batches_cover_every_item_once_per_epoch():
    batches = list(streams.index_batches(12, 4, seed=0).take(6).as_numpy_iterator())
    assert all(b.shape == (4,) for b in batches)
    for epoch in (batches[:3], batches[3:]):
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(12))
    assert not np.array_equal(np.concatenate(batches[:3]), np.concatenate(batches[3:]))
    small = list(streams.index_batches(3, 5, seed=0).take(4).as_numpy_iterator())
    assert all(b.shape == (5,) and b.max() < 3 for b in small)


def _pool(values):
    table = np.asarray(values, np.float32)
    return streams.Stream(len(table), lambda seed: lambda idx: tf.gather(tf.constant(table), idx))


def _batches(dataset_fn, start_step, count, num_replicas=1, pipeline=0):
    context = tf.distribute.InputContext(1, pipeline, num_replicas)
    return list(dataset_fn(context, start_step).take(count).as_numpy_iterator())


def test_streams_are_independent_and_per_replica():
    fn = streams.streams_dataset_fn(
        {"joint": _pool(np.arange(10)), "marginal_0": _pool(100 + np.arange(10))}, 10, seed=3
    )
    (first,) = _batches(fn, 0, 1, num_replicas=2)
    assert set(first) == {"joint", "marginal_0"}
    assert first["joint"].shape == (5,)
    assert set(first["marginal_0"]).issubset(set(100 + np.arange(10.0)))
    # Different seeds per stream: the two pools are not read in the same order.
    many = _batches(fn, 0, 4)
    assert not all(np.array_equal(b["joint"] + 100, b["marginal_0"]) for b in many)


def test_resumed_and_other_workers_see_other_batches():
    fn = streams.streams_dataset_fn({"joint": _pool(np.arange(50))}, 10, seed=3)
    first = _batches(fn, 0, 1)[0]["joint"]
    np.testing.assert_array_equal(first, _batches(fn, 0, 1)[0]["joint"])
    assert not np.array_equal(first, _batches(fn, 1000, 1)[0]["joint"])
    assert not np.array_equal(first, _batches(fn, 0, 1, pipeline=1)[0]["joint"])
