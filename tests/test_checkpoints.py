import os

import pytest
import tensorflow as tf

from tf_factorgan import checkpoints


def _saved_run(directory, steps=(2, 4, 6)):
    """Checkpoints of one variable holding the step, as the trainer's manager writes."""
    value = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=value), directory, 3)
    for step in steps:
        value.assign(float(step))
        manager.save(checkpoint_number=step)
    return directory


def _restore(directory):
    value = tf.Variable(-1.0)
    restored = checkpoints.restore_newest(tf.train.Checkpoint(value=value), directory)
    return restored, float(value.numpy())


def _index(directory):
    return os.path.join(directory, "checkpoint")


@pytest.mark.parametrize("damage", [
    lambda path: os.remove(path),
    lambda path: open(path, "r+b").truncate(20),
    lambda path: open(path, "wb").write(b"\xff\xfe\x00garbage\x80" * 10),
    lambda path: open(path, "w").write('model_checkpoint_path: "ckpt-99"\n'),
], ids=["missing", "truncated", "binary_garbage", "names_a_gone_checkpoint"])
def test_the_files_not_the_index_file_decide(tmp_path, damage):
    directory = _saved_run(str(tmp_path))
    damage(_index(directory))
    restored, value = _restore(directory)
    assert (restored.step, value, restored.skipped) == (6, 6.0, ())
    assert restored.path == os.path.join(directory, "ckpt-6")


def test_a_deleted_or_damaged_newest_checkpoint_falls_back_to_the_next(tmp_path):
    directory = _saved_run(str(tmp_path))
    os.remove(os.path.join(directory, "ckpt-6.index"))
    with open(os.path.join(directory, "ckpt-4.data-00000-of-00001"), "r+b") as f:
        f.truncate(10)
    restored, value = _restore(directory)
    assert (restored.step, value) == (2, 2.0)
    (path6, reason6), (path4, reason4) = restored.skipped
    assert path6.endswith("ckpt-6") and reason6 == "incomplete, lacks ckpt-6.index"
    assert path4.endswith("ckpt-4") and "Error: " in reason4


def test_none_restoring_refuses_naming_the_folder_and_leaves_the_files(tmp_path):
    directory = _saved_run(str(tmp_path), steps=(2, 4))
    for step in (2, 4):
        with open(os.path.join(directory, f"ckpt-{step}.data-00000-of-00001"), "wb") as f:
            f.write(b"x")
    before = sorted(os.listdir(directory))
    with pytest.raises(checkpoints.CheckpointError,
                       match=f"none of the 2 checkpoints in {directory} restores .*ckpt-4: .*ckpt-2: "):
        _restore(directory)
    assert sorted(os.listdir(directory)) == before


def test_no_checkpoint_at_all_is_step_0(tmp_path):
    assert _restore(str(tmp_path / "absent"))[0] == checkpoints.Restored(0, None)
    os.makedirs(tmp_path / "only_index")
    open(tmp_path / "only_index" / "checkpoint", "w").write('model_checkpoint_path: "ckpt-3"\n')
    assert _restore(str(tmp_path / "only_index"))[0].step == 0


def test_missing_files_names_each_absent_shard(tmp_path):
    directory = str(tmp_path)
    open(tmp_path / "ckpt-5.data-00001-of-00003", "w").close()
    assert checkpoints.missing_files(directory, 5) == [
        "ckpt-5.data-00000-of-00003", "ckpt-5.data-00002-of-00003", "ckpt-5.index"]
    assert checkpoints.steps_on_disk(directory) == [5]


def test_set_aside_and_rewritten_index_let_the_manager_carry_on(tmp_path):
    directory = _saved_run(str(tmp_path))
    open(_index(directory), "wb").write(b"\x00\xff")
    target = checkpoints.set_aside(directory, [6])
    assert sorted(os.listdir(target)) == ["ckpt-6.data-00000-of-00001", "ckpt-6.index"]
    assert os.path.dirname(target) == os.path.join(directory, "unrestorable")
    checkpoints.write_index(directory, 4)
    value = tf.Variable(0.0)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=value), directory, 3)
    assert manager.latest_checkpoint == os.path.join(directory, "ckpt-4")
    for step in (6, 8):
        manager.save(checkpoint_number=step)
    # max_to_keep 3 still applies to the checkpoints listed before the repair.
    assert checkpoints.steps_on_disk(directory) == [8, 6, 4]
    assert sorted(os.listdir(target)) == ["ckpt-6.data-00000-of-00001", "ckpt-6.index"]


def test_remove_temporaries_takes_only_what_interrupted_saves_leave(tmp_path):
    directory = _saved_run(str(tmp_path), steps=(2,))
    os.makedirs(tmp_path / "ckpt-4_temp")
    open(tmp_path / "ckpt-4_temp" / "part-00000-of-00001.data-00000-of-00001", "wb").write(b"1" * 100)
    open(tmp_path / "checkpoint.tmp5e1f", "w").close()
    assert checkpoints.remove_temporaries(directory) == ["checkpoint.tmp5e1f", "ckpt-4_temp"]
    assert sorted(os.listdir(directory)) == [
        "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
