import dataclasses
import os
import re
import signal
import threading

import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import trainer
from tf_factorgan.experiments import paired_mnist


def _config(tmp_path, **kw):
    values = dict(num_joint_samples=50, batch_size=10, steps=4, steps_per_call=2, log_every=2,
                  image_every=2, checkpoint_every=2, out_path=str(tmp_path), experiment_name="run")
    values.update(kw)
    return paired_mnist.PairedMnistConfig(**values)


def _state(loop):
    """Every variable the checkpoint holds, by checkpoint key."""
    reader = tf.train.load_checkpoint(loop.manager.latest_checkpoint)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def _live_state(loop):
    models = loop.gan_step.models
    values = [v.numpy() for net in models.networks() for v in net.weights]
    values += [v.numpy() for opt in models.optimizers() for v in opt.variables]
    values += [loop.gan_step.randomness.generator.state.numpy(), loop.step.numpy()]
    return values


def test_resume_restores_identical_state_and_continues(tmp_path, digits):
    config = _config(tmp_path)
    data = paired_mnist.build_data(config, *digits)
    first = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    result = first.run()
    assert result.step == 4 and not result.interrupted
    saved = _live_state(first)
    assert any(k.startswith("discriminator_p_dependency/") and "vector_u" in k for k in _state(first))

    second = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    assert second.restore() == 4
    for a, b in zip(saved, _live_state(second)):
        np.testing.assert_array_equal(a, b)

    # A resumed run takes its learning rate from the command, not the checkpoint.
    longer = paired_mnist.build_trainer(_config(tmp_path, steps=6, lr=5e-4), data, tf.distribute.get_strategy())
    result = longer.run()
    for opt in longer.gan_step.models.optimizers():
        assert float(opt.learning_rate) == pytest.approx(5e-4)
    assert result.step == 6 and int(longer.step.numpy()) == 6
    assert tf.train.latest_checkpoint(longer.checkpoint_dir).endswith("ckpt-6")
    assert os.listdir(os.path.join(config.run_dir, "logs"))


def test_negative_intervals_are_refused():
    with pytest.raises(ValueError, match="--log_every must be >= 0"):
        trainer.LoopConfig(steps=1, log_every=-1)
    with pytest.raises(ValueError, match="--eval_every must be >= 0"):
        trainer.LoopConfig(steps=1, eval_every=-2)


def test_corrupted_checkpoint_is_reported_with_its_path(tmp_path, digits):
    config = _config(tmp_path, steps=2)
    data = paired_mnist.build_data(config, *digits)
    paired_mnist.build_trainer(config, data, tf.distribute.get_strategy()).run()
    path = tf.train.latest_checkpoint(os.path.join(config.run_dir, "checkpoints"))
    data_file = [f for f in os.listdir(os.path.dirname(path)) if ".data-" in f][0]
    with open(os.path.join(os.path.dirname(path), data_file), "r+b") as f:
        f.truncate(100)
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    with pytest.raises(trainer.CheckpointError, match=re.escape(path)):
        loop.run()


def test_ctrl_c_saves_a_checkpoint_and_returns(tmp_path, digits):
    config = _config(tmp_path, steps=10**6, steps_per_call=1, log_every=0, image_every=0,
                     checkpoint_every=0)
    data = paired_mnist.build_data(config, *digits)
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    # A shell's background job starts with SIGINT ignored; the loop must restore that.
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(8.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result = loop.run()
    finally:
        timer.cancel()
    assert result.interrupted and 0 < result.step < 10**6
    assert tf.train.latest_checkpoint(loop.checkpoint_dir).endswith(f"ckpt-{result.step}")
    assert signal.getsignal(signal.SIGINT) is before


def test_eval_fn_runs_at_multiples_of_eval_every_once_across_a_resume(tmp_path, digits):
    from tests.conftest import scalars

    calls = []

    def loop_with_eval(steps):
        config = _config(tmp_path, steps=steps, steps_per_call=4, log_every=0, image_every=0,
                         checkpoint_every=4)
        loop = paired_mnist.build_trainer(config, paired_mnist.build_data(config, *digits),
                                          tf.distribute.get_strategy())
        loop.loop = dataclasses.replace(loop.loop, eval_every=2)

        def eval_fn(step):
            # Evaluated at its step's weights, before that step's checkpoint.
            calls.append((step, int(loop.step.numpy()),
                          tf.train.latest_checkpoint(loop.checkpoint_dir)))
            return {"score": step / 2}

        loop.eval_fn = eval_fn
        return loop

    assert loop_with_eval(6).run().step == 6
    # 2 and 4, not 6: the experiment's final evaluation takes the last step.
    assert [c[:2] for c in calls] == [(2, 2), (4, 4)]
    assert calls[1][2] is None  # ckpt-4 is written after the evaluation at 4
    calls.clear()
    assert loop_with_eval(10).run().step == 10  # resumes from ckpt-6
    assert [c[:2] for c in calls] == [(8, 8)]
    assert calls[0][2].endswith("ckpt-6")
    log_dir = os.path.join(str(tmp_path), "paired_mnist", "run", "logs")
    assert scalars(log_dir, "eval/score") == [(2, 1.0), (4, 2.0), (8, 4.0)]

