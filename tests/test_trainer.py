import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tf_factorgan import checkpoints, trainer
from tf_factorgan.experiments import common, paired_mnist


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
    # TensorBoard's events in the run folder itself: TensorBoard names the run after it.
    assert [name for name in os.listdir(config.run_dir) if "tfevents" in name]


def test_events_go_into_the_run_folder_or_the_logs_folder_of_an_earlier_version(tmp_path):
    assert trainer.log_dir(str(tmp_path)) == str(tmp_path)
    os.makedirs(tmp_path / "logs")  # no event files: not a run of an earlier version
    assert trainer.log_dir(str(tmp_path)) == str(tmp_path)
    open(tmp_path / "logs" / "events.out.tfevents.1796586264.vm.1.0.v2", "w").close()
    assert trainer.log_dir(str(tmp_path)) == str(tmp_path / "logs")


def test_negative_intervals_are_refused():
    with pytest.raises(ValueError, match="log_every must be >= 0"):
        trainer.LoopConfig(steps=1, log_every=-1)
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        trainer.LoopConfig(steps=1, eval_every=-2)


def test_no_restorable_checkpoint_refuses_to_start_afresh(tmp_path, digits):
    config = _config(tmp_path, steps=2)
    data = paired_mnist.build_data(config, *digits)
    paired_mnist.build_trainer(config, data, tf.distribute.get_strategy()).run()
    checkpoint_dir = os.path.join(config.run_dir, "checkpoints")
    with open(os.path.join(checkpoint_dir, "ckpt-2.data-00000-of-00001"), "r+b") as f:
        f.truncate(100)
    before = sorted(os.listdir(checkpoint_dir))
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    with pytest.raises(checkpoints.CheckpointError,
                       match=f"none of the 1 checkpoints in {re.escape(checkpoint_dir)} restores"):
        loop.run()
    assert sorted(os.listdir(checkpoint_dir)) == before


def _finished_run(tmp_path, digits, steps=6):
    """A run trained to `steps` (checkpoints at 2, 4, 6) with outputs of that step."""
    config = _config(tmp_path, steps=steps)
    data = paired_mnist.build_data(config, *digits)
    paired_mnist.build_trainer(config, data, tf.distribute.get_strategy()).run()
    with open(os.path.join(config.run_dir, "metrics.json"), "w") as f:
        json.dump({"step": steps, "fid_upper": 1.5}, f)
    with open(os.path.join(config.run_dir, "samples.png"), "wb") as f:
        f.write(b"png of step 6")
    return config, data


def test_resume_skips_a_damaged_newest_checkpoint_and_keeps_later_outputs(tmp_path, digits, capsys):
    config, data = _finished_run(tmp_path, digits)
    checkpoint_dir = os.path.join(config.run_dir, "checkpoints")
    with open(os.path.join(checkpoint_dir, "ckpt-6.index"), "r+b") as f:
        f.truncate(30)
    os.makedirs(os.path.join(checkpoint_dir, "ckpt-8_temp"))
    open(os.path.join(config.run_dir, ".tmp-abc.json"), "w").close()
    os.makedirs(os.path.join(config.run_dir, ".tmp-outputs", "half"))  # a killed staging

    result = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy()).run()
    assert result.step == 6
    said = capsys.readouterr().out
    assert "Removed what interrupted writes left: ckpt-8_temp, .tmp-abc.json, .tmp-outputs" in said
    assert f"Skipped checkpoint {checkpoint_dir}/ckpt-6: " in said
    assert f"Resuming from {checkpoint_dir}/ckpt-4 (step 4)." in said
    # The damaged checkpoint and the outputs of step 6 are kept aside, not overwritten.
    (aside,) = os.listdir(os.path.join(checkpoint_dir, "unrestorable"))
    assert sorted(os.listdir(os.path.join(checkpoint_dir, "unrestorable", aside))) == [
        "ckpt-6.data-00000-of-00001", "ckpt-6.index"]
    superseded = os.path.join(config.run_dir, "superseded", "step-6")
    with open(os.path.join(superseded, "metrics.json")) as f:
        assert json.load(f) == {"step": 6, "fid_upper": 1.5}
    assert open(os.path.join(superseded, "samples.png"), "rb").read() == b"png of step 6"
    # TensorBoard's event files stay: they are the run's, not outputs of a step.
    assert sorted(os.listdir(superseded)) == ["metrics.json", "samples.png"]
    assert len([n for n in os.listdir(config.run_dir) if "tfevents" in n]) == 2
    assert not os.path.exists(os.path.join(config.run_dir, "metrics.json"))
    assert checkpoints.steps_on_disk(checkpoint_dir) == [6, 4, 2]
    assert tf.train.latest_checkpoint(checkpoint_dir).endswith("ckpt-6")
    assert not os.path.exists(os.path.join(checkpoint_dir, "ckpt-8_temp"))


@pytest.mark.parametrize("garbage", [b"", b"\x89\xff\x00 not a proto \x80", b'model_checkpoint_path: "ckpt-40"'],
                         ids=["empty", "binary", "gone"])
def test_a_broken_index_file_neither_restarts_nor_blocks_eval_only(tmp_path, digits, garbage):
    config, data = _finished_run(tmp_path, digits)
    with open(os.path.join(config.run_dir, "checkpoints", "checkpoint"), "wb") as f:
        f.write(garbage)
    eval_only = dataclasses.replace(config, eval_only=True)
    loop = paired_mnist.build_trainer(eval_only, data, tf.distribute.get_strategy())
    assert common.train_or_restore(eval_only, loop).step == 6
    # The run's outputs are of the restored step: nothing was moved.
    assert os.path.exists(os.path.join(config.run_dir, "metrics.json"))
    longer = paired_mnist.build_trainer(_config(tmp_path, steps=8), data, tf.distribute.get_strategy())
    assert longer.run().step == 8
    assert checkpoints.steps_on_disk(longer.checkpoint_dir) == [8, 6, 4]


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


def test_eval_fn_runs_at_multiples_of_eval_every_once_across_a_resume(tmp_path, digits, capsys):
    from tests.conftest import scalars, summary_values

    calls = []

    def loop_with_eval(steps):
        config = _config(tmp_path, steps=steps, steps_per_call=4, log_every=0, image_every=4,
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
    log_dir = os.path.join(str(tmp_path), "paired_mnist", "run")
    assert scalars(log_dir, "eval/score") == [(2, 1.0), (4, 2.0), (8, 4.0)]
    # Images every image_every steps and at the last step of each run.
    assert [step for step, tag, _ in summary_values(log_dir) if tag == "samples"] == [4, 6, 8, 10]
    # Each evaluation is announced and its results said on lines of their own (output
    # to a file: no bar, plain lines).
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("step ")] == [
        "step 2: evaluating", "step 2: score 1.0000", "step 4: evaluating", "step 4: score 2.0000",
        "step 8: evaluating", "step 8: score 4.0000"]



def _newest_complete(checkpoint_dir):
    return next((s for s in checkpoints.steps_on_disk(checkpoint_dir)
                 if not checkpoints.missing_files(checkpoint_dir, s)), 0)


def _start(out_path, name, steps, log):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.kill_program", out_path, name, str(steps)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(condition, process, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.001)


def test_sigkill_at_random_moments_resumes_from_the_newest_complete_checkpoint(tmp_path):
    out_path, steps = str(tmp_path), 120
    reference = subprocess.run(
        [sys.executable, "-m", "tests.kill_program", out_path, "reference", str(steps)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stdout[-2000:] + reference.stderr[-2000:]
    run_dir = os.path.join(out_path, "paired_mnist", "killed")
    checkpoint_dir = os.path.join(run_dir, "checkpoints")
    rng = np.random.default_rng(11)
    logs, resumable, inside_a_write = [], [], 0
    # Two kills at seeded random moments after some progress, then kills the moment a
    # checkpoint write is under way until one leaves that write's temporary folder.
    for attempt in range(8):
        logs.append(open(tmp_path / f"run{attempt}.log", "w+"))
        before = _newest_complete(checkpoint_dir)
        process = _start(out_path, "killed", steps, logs[-1])
        if attempt < 2:
            _wait_for(lambda: _newest_complete(checkpoint_dir) > before, process)
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            _wait_for(lambda: any(n.endswith("_temp") for n in os.listdir(checkpoint_dir))
                      if os.path.isdir(checkpoint_dir) else False, process)
        process.kill()
        process.wait()
        resumable.append(_newest_complete(checkpoint_dir))
        if any(n.endswith("_temp") for n in os.listdir(checkpoint_dir)):
            inside_a_write += 1
            break
    assert inside_a_write == 1
    logs.append(open(tmp_path / "final.log", "w+"))
    final = _start(out_path, "killed", steps, logs[-1])
    assert final.wait(timeout=600) == 0

    # Each restart resumed from the newest checkpoint complete at its kill, and the
    # run folder ends as an uninterrupted run's.
    resumed = []
    for log in logs[1:]:
        log.seek(0)
        found = re.findall(r"Resuming from \S+/ckpt-(\d+) \(step (\d+)\)", log.read())
        resumed.append(int(found[0][1]))
    assert resumed == resumable and resumed == sorted(resumed) and resumed[0] > 0
    logs[-1].seek(0)
    assert "Removed what interrupted writes left: ckpt-" in logs[-1].read()
    with open(os.path.join(run_dir, "metrics.json")) as f:
        killed = json.load(f)
    with open(os.path.join(out_path, "paired_mnist", "reference", "metrics.json")) as f:
        uninterrupted = json.load(f)
    assert sorted(killed) == sorted(uninterrupted) and killed["step"] == steps
    assert not os.path.exists(os.path.join(run_dir, "superseded"))
    assert not [n for n in os.listdir(checkpoint_dir) if "temp" in n or n.startswith(".tmp")]
