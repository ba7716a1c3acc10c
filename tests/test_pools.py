import os

import numpy as np
import pytest

from tf_factorgan.data import pools, streams


def _disk(tmp_path, array, name="pool"):
    return pools.write_disk_array(str(tmp_path / name), np.array_split(array, 3), array.shape[1:],
                                  array.dtype, len(array))


def test_disk_array_takes_the_rows_written(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, [7, 4, 3, 2], dtype=np.uint8)
    disk = _disk(tmp_path, array)
    assert disk.shape == (7, 4, 3, 2) and disk.nbytes == array.nbytes
    np.testing.assert_array_equal(disk.take([6, 0, 6, 3]), array[[6, 0, 6, 3]])
    np.testing.assert_array_equal(pools.read_disk_array(disk.folder).to_memory(), array)
    with pytest.raises(IndexError, match="out of range"):
        disk.take([7])


def test_a_failed_write_leaves_no_folder(tmp_path):
    def batches():
        yield np.zeros([2, 3], np.float32)
        raise RuntimeError("decoder died")

    with pytest.raises(RuntimeError):
        pools.write_disk_array(str(tmp_path / "pool"), batches(), [3], np.float32, 4)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="wrote 2 rows .* expected 5"):
        pools.write_disk_array(str(tmp_path / "pool"), [np.zeros([2, 3])], [3], np.float32, 5)
    assert os.listdir(tmp_path) == []


def test_a_truncated_cache_is_named(tmp_path):
    disk = _disk(tmp_path, np.zeros([4, 8], np.uint8))
    with open(os.path.join(disk.folder, pools.DATA_FILE), "r+b") as f:
        f.truncate(10)
    with pytest.raises(ValueError, match="holds 10 bytes, its header says 32"):
        pools.read_disk_array(disk.folder)


def test_concat_joins_adjacent_slices_without_a_copy_and_others_by_reference(tmp_path):
    array = np.arange(40, dtype=np.uint8).reshape(10, 4)
    joined = pools.concat([array[:3], array[3:]])
    assert np.shares_memory(joined, array)
    np.testing.assert_array_equal(joined, array)
    gapped = pools.concat([array[:2], array[5:]])
    np.testing.assert_array_equal(gapped, array[[0, 1, 5, 6, 7, 8, 9]])
    mixed = pools.concat([array[:3], _disk(tmp_path, array[3:]), None])
    assert isinstance(mixed, pools.ConcatPool) and len(mixed) == 10
    np.testing.assert_array_equal(mixed.take([9, 0, 3, 2]), array[[9, 0, 3, 2]])
    with pytest.raises(ValueError, match="row shape and dtype"):
        pools.ConcatPool((array, np.zeros([2, 5], np.uint8)))


def test_disk_and_large_pools_stream_the_same_batches_as_constant_pools(tmp_path, monkeypatch):
    array = np.random.default_rng(1).integers(0, 256, [13, 2, 2, 1], dtype=np.uint8)
    seen = {}
    for name, pool in (("memory", array), ("disk", _disk(tmp_path, array)), ("large", array)):
        # A pool past the graph-constant limit is gathered in NumPy.
        monkeypatch.setattr(streams, "CONSTANT_LIMIT_BYTES", 0 if name == "large" else 1 << 30)
        fn = streams.streams_dataset_fn({"marginal_0": streams.Stream(13, lambda seed, p=pool: streams.pool_gatherer(p))}, 5, seed=4)
        dataset = fn(_Context(), 0)
        seen[name] = [batch["marginal_0"].numpy() for batch in dataset.take(6)]
    assert seen["disk"][0].dtype == np.float32 and seen["disk"][0].shape == (5, 2, 2, 1)
    for memory, disk, large in zip(seen["memory"], seen["disk"], seen["large"]):
        np.testing.assert_array_equal(memory, disk)
        np.testing.assert_array_equal(memory, large)
    assert seen["disk"][0].max() <= 1.0


class _Context:
    input_pipeline_id = 0

    def get_per_replica_batch_size(self, batch):
        return batch


def test_out_of_range_rows_are_refused_and_no_rows_is_an_empty_batch(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(6, 2, 2)
    disk = _disk(tmp_path, array)
    assert disk.take([]).shape == (0, 2, 2)
    joined = pools.ConcatPool((array[:2], disk))
    with pytest.raises(IndexError, match="out of range"):
        joined.take([8])
    with pytest.raises(IndexError, match="out of range"):
        joined.take([-1])


def test_a_cache_another_process_finished_first_is_kept(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    first = _disk(tmp_path, array, name="entry")
    # A second writer of the same entry keeps the first one's (identical) copy.
    again = pools.write_disk_array(first.folder, [array], [4], np.uint8, 3)
    np.testing.assert_array_equal(again.to_memory(), array)
    assert sorted(os.listdir(tmp_path)) == ["entry"]
    # An entry that does not read back is replaced.
    with open(os.path.join(first.folder, pools.DATA_FILE), "r+b") as f:
        f.truncate(5)
    fixed = pools.write_disk_array(first.folder, [array], [4], np.uint8, 3)
    np.testing.assert_array_equal(fixed.to_memory(), array)
