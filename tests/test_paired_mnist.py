import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, scalars, summary_values
from tf_factorgan.experiments import common, paired_mnist
from tf_factorgan.factorisation import Variant


def _tiny_config(tmp_path, **kw):
    values = dict(num_joint_samples=40, batch_size=10, steps=4, steps_per_call=2, log_every=2,
                  image_every=2, checkpoint_every=2, out_path=str(tmp_path), eval_samples=100,
                  min_classifier_accuracy=0.0, experiment_name="tiny")
    values.update(kw)
    return paired_mnist.PairedMnistConfig(**values)


def test_tiny_end_to_end_run_writes_every_output(tmp_path, digits):
    config = _tiny_config(tmp_path)
    data = paired_mnist.build_data(config, *digits)
    metrics = common.run_experiment(paired_mnist.TASK, config, data, tf.distribute.get_strategy())
    run_dir = tmp_path / "paired_mnist" / "tiny"
    written = json.loads((run_dir / "metrics.json").read_text())
    for key in ("fid_upper", "fid_lower", "dependency_distance"):
        assert written[key] == pytest.approx(metrics[key]) and written[key] >= 0
    assert written["step"] == 4 and written["variant"] == "factorgan"
    assert written["eval_samples"] == 100
    assert (run_dir / "samples.png").stat().st_size > 0
    assert (run_dir / "generator.weights.h5").stat().st_size > 0
    # The spec beside the weights is all the export needs.
    from tf_factorgan.export import export
    from tf_factorgan.models import specs

    assert specs.read(str(run_dir)) == paired_mnist.generator_spec(config)
    assert export.build_module(str(run_dir), "samples").sample(2, 0)["images"].shape == (2, 56, 28, 1)
    assert (run_dir / "checkpoints" / "ckpt-4.index").exists()
    # TensorBoard's events in the run folder: TensorBoard names the run after it.
    assert [p.name for p in run_dir.iterdir() if "tfevents" in p.name]
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".tmp")]

    # --eval_only evaluates the same checkpoint again: same generator, same metrics.
    again = common.run_experiment(paired_mnist.TASK, _tiny_config(tmp_path, eval_only=True), data,
                                  tf.distribute.get_strategy())
    assert again["fid_upper"] == pytest.approx(metrics["fid_upper"], rel=1e-6)
    assert again["dependency_distance"] == pytest.approx(metrics["dependency_distance"])


def test_eval_every_writes_cheaper_points_under_tags_apart_from_the_final_metrics(tmp_path, digits,
                                                                                   monkeypatch):
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tf_factorgan.eval import mnist_classifier_training, paired_mnist_metrics

    loads, sizes = [], []
    load, evaluate = (mnist_classifier_training.train_or_load_classifiers,
                      paired_mnist_metrics.evaluate_paired_mnist)
    monkeypatch.setattr(mnist_classifier_training, "train_or_load_classifiers",
                        lambda *a, **k: loads.append(len(a[5])) or load(*a, **k))
    monkeypatch.setattr(paired_mnist_metrics, "evaluate_paired_mnist",
                        lambda model, fake, real, **k: sizes.append(len(fake))
                        or evaluate(model, fake, real, **k))
    config = _tiny_config(tmp_path, steps=6, eval_every=2, eval_every_samples=50)
    metrics = common.run_experiment(paired_mnist.TASK, config, paired_mnist.build_data(config, *digits),
                                    tf.distribute.get_strategy())
    # The tuned classifier and 3 of the paper's recipe, loaded once; final on eval_samples.
    assert loads == [4] and sizes == [50, 50, 100]
    log_dir = str(tmp_path / "paired_mnist" / "tiny")
    for key in paired_mnist.HEADLINE_METRICS + paired_mnist.PAPER_METRICS:
        # Every point of a tag is measured alike: 50 samples during training, the
        # final 100 under final/.
        curve = scalars(log_dir, f"eval/{key}")
        assert [step for step, _ in curve] == [2, 4] and min(v for _, v in curve) >= 0
        assert scalars(log_dir, f"final/{key}") == [(6, pytest.approx(metrics[key]))]

    values = {tag: value for _, tag, value in summary_values(log_dir)}
    config_text = tf.make_ndarray(values["config"].tensor).item().decode()
    assert "| eval_every | `2` |" in config_text and "| variant | `factorgan` |" in config_text
    assert f"| out_path | `{tmp_path}` |" in config_text  # the text table keeps the paths
    start = hparams_metadata.parse_session_start_info_plugin_data(
        values[hparams_metadata.SESSION_START_INFO_TAG].metadata.plugin_data.content)
    assert start.group_name == "tiny"  # the row is named after the run
    assert start.hparams["variant"].string_value == "factorgan"
    assert start.hparams["num_joint_samples"].string_value == "40"  # shown as written
    assert start.hparams["same_digit_prob"].number_value == pytest.approx(0.9)
    assert not {"factorgan", "use_real_dep_disc"} & set(start.hparams)  # replaced by variant
    assert not {"mnist_manual_dir", "out_path", "classifier_cache_dir"} & set(start.hparams)
    experiment = hparams_metadata.parse_experiment_plugin_data(
        values[hparams_metadata.EXPERIMENT_TAG].metadata.plugin_data.content)
    assert [m.name.tag for m in experiment.metric_infos] == [
        "final/fid_upper", "final/fid_lower", "final/dependency_distance",
        "final/paper_fid_upper", "final/paper_fid_lower"]
    # The settings that tell runs apart come first (marked as differing) and are the
    # five TensorBoard ticks.
    infos = experiment.hparam_infos
    assert [info.name for info in infos[:5]] == [
        "variant", "num_joint_samples", "same_digit_prob", "pairing", "seed"]
    assert [info.name for info in infos if info.differs] == [info.name for info in infos[:5]]


def test_pairs_grid_frames_each_pair_and_marks_its_two_digits():
    samples = np.concatenate([np.full([3, 784], 1.0), np.full([3, 784], 0.75)], axis=1)
    grid = paired_mnist.pairs_grid(samples, columns=2)[..., 0]
    # Cells of (28 + 1 + 28) x 28 pixels drawn twice their size, 8 light-grey pixels
    # around and between them.
    assert grid.shape == (2 * 122 + 8, 2 * 64 + 8)
    for frame in (grid[:8], grid[122:130], grid[244:], grid[:, :8], grid[:, 64:72], grid[:, 128:]):
        assert np.all(frame == np.float32(0.8))
    for top, left in ((8, 8), (8, 72), (130, 8)):
        assert np.all(grid[top : top + 56, left : left + 56] == 1.0)  # upper digit
        assert np.all(grid[top + 56 : top + 58, left : left + 56] == np.float32(0.35))  # the line
        assert np.all(grid[top + 58 : top + 114, left : left + 56] == 0.75)  # lower digit
    assert np.all(grid[130:244, 72:128] == 0.0)  # the empty fourth cell


def test_eval_only_without_a_checkpoint_says_so(tmp_path, digits):
    config = _tiny_config(tmp_path, eval_only=True)
    data = paired_mnist.build_data(config, *digits)
    with pytest.raises(FileNotFoundError, match="eval_only found no checkpoint"):
        common.run_experiment(paired_mnist.TASK, config, data, tf.distribute.get_strategy())


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_joint_samples=60001), r"^num_joint_samples must lie in \[1, 60000\]"),
    (dict(same_digit_prob=-0.1), r"^same_digit_prob must lie in \[0, 1\]"),
    (dict(variant="wgan"), "^variant must be one of gan, factorgan, factorgan_no_cp, got 'wgan'"),
    (dict(batch_size=0), "^batch_size must be >= 1"),
])
def test_bad_settings_fail_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_mnist.PairedMnistConfig(**kwargs).gan_config()


def test_variant_follows_the_settings():
    assert paired_mnist.PairedMnistConfig().gan_config().variant is Variant.FACTORGAN
    no_cp = paired_mnist.PairedMnistConfig(variant="factorgan_no_cp")
    assert no_cp.gan_config().variant is Variant.FACTORGAN_NO_CP
    gan = paired_mnist.PairedMnistConfig(variant=Variant.GAN)
    assert gan.variant == "gan" and gan.gan_config().variant is Variant.GAN


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "trainers.paired_mnist", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def _our_lines(stderr: str) -> list:
    """stderr without TensorFlow's own start-up lines (C++ logs, CPU features)."""
    noise = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|To enable the following)")
    return [line for line in stderr.splitlines() if line.strip() and not noise.match(line)]


def test_cli_reports_bad_flags_and_missing_data_in_one_line(tmp_path):
    old_flags = tmp_path / "old.cfg"  # a flag file of an earlier version
    old_flags.write_text("--factorgan\n--nouse_real_dep_disc\n--steps=10\n")
    cases = {
        ("--nofactorgan", "--use_real_dep_disc"): "--nofactorgan --use_real_dep_disc: the variant is one flag now; use --variant=gan",
        (f"--flagfile={old_flags}",): "--factorgan --nouse_real_dep_disc: the variant is one flag now; use --variant=factorgan_no_cp",
        ("--variant=wgan",): "--variant must be one of gan, factorgan, factorgan_no_cp, got 'wgan'",
        ("--batch_size=0",): "--batch_size must be >= 1, got 0",
        ("--num_joint_samples=999999",): r"--num_joint_samples must lie in \[1, 60000\]",
        ("--same_digit_prob=2",): r"--same_digit_prob must lie in \[0, 1\], got 2.0",
        ("--same_digit_prob=nan",): r"--same_digit_prob must lie in \[0, 1\], got nan",
        ("--eval_samples=1",): "--eval_samples must be >= 2, got 1",
        ("--paper_classifiers=-1",): "--paper_classifiers must be >= 0, got -1",
        (f"--score_samples={tmp_path}/none.npy",): f"No such file or directory: '{tmp_path}/none.npy'",
        ("--lr=nan",): "--lr must be > 0, got nan",
        ("--steps=-1",): "--steps must be >= 0, got -1",
        (f"--mnist_manual_dir={tmp_path}/nowhere",): f"{tmp_path}/nowhere.*train-images-idx3-ubyte.gz",
    }
    processes = {args: subprocess.Popen(
        [sys.executable, "-m", "trainers.paired_mnist", *args, f"--out_path={tmp_path}"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in cases}
    for args, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 1, args
        (line,) = _our_lines(err)
        assert re.fullmatch(f"error: .*{cases[args]}.*", line), (args, line)
    assert not (tmp_path / "paired_mnist").exists()


def test_ctrl_c_at_any_moment_of_start_up_ends_without_a_traceback(tmp_path, mnist_dir):
    delays = (0.2, 2.0, 5.0, 10.0)
    processes = [subprocess.Popen(
        [sys.executable, "-m", "trainers.paired_mnist", f"--mnist_manual_dir={mnist_dir}",
         f"--out_path={tmp_path}/{i}", "--steps=1000000", "--eval_samples=100"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(len(delays))]
    started = time.monotonic()
    for delay, process in zip(delays, processes):
        time.sleep(max(0.0, started + delay - time.monotonic()))
        process.send_signal(signal.SIGINT)
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert "Traceback" not in out + err, err[-3000:]
        # Before training: one line; in training the loop saves and says where.
        assert re.search(r"^(\ninterrupted|Interrupted at step \d+; checkpoint saved)",
                         out + err, re.M), (out + err)[-3000:]


def test_score_file_scores_pairs_from_elsewhere_on_the_runs_instrument(tmp_path, digits):
    config = _tiny_config(tmp_path, paper_classifiers=1)
    data = paired_mnist.build_data(config, *digits)
    real = data.test.samples()
    path = tmp_path / "real.npy"
    np.save(path, np.concatenate([real, real[::-1]]))  # more pairs than scored: first N
    metrics = paired_mnist.score_file(config, str(path), data)
    assert metrics["eval_samples"] == 100
    for key in ("fid_upper", "fid_lower", "paper_fid_upper", "paper_fid_lower", "dependency_distance"):
        assert metrics[key] == pytest.approx(0.0, abs=1e-3), key
    # Anything else scores as the run's own evaluation would: its first 100 pairs
    # against the first 100 test pairs, on the same classifiers.
    from tf_factorgan.eval import paired_mnist_metrics

    noise = np.random.default_rng(0).uniform(size=(150, 1568)).astype(np.float32)
    np.save(path, noise)
    classifiers = data.classifiers()
    expected = paired_mnist_metrics.evaluate_paired_mnist(
        classifiers.tuned[0], noise[:100], real[:100], paper_classifiers=[classifiers.paper[0][0]])
    scored = paired_mnist.score_file(config, str(path), data)
    assert {k: scored[k] for k in expected} == pytest.approx(expected)
    assert scored["fid_upper"] > 1.0

    np.save(path, real[:99])
    with pytest.raises(ValueError, match=r"real.npy must hold float pairs in \[0, 1\] of shape "
                                         r"\[N, 1568\] with N >= 100 .*got float32 \(99, 1568\)"):
        paired_mnist.score_file(config, str(path), data)
    np.save(path, real * 255 / real.max())
    with pytest.raises(ValueError, match=r"real.npy must hold float pairs in \[0, 1\].* in \[0.0, 255.0\]"):
        paired_mnist.score_file(config, str(path), data)
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(ValueError, match="text.npy is not a .npy array file"):
        paired_mnist.score_file(config, str(tmp_path / "text.npy"), data)


def test_a_run_says_what_it_runs_on_which_device_and_where_its_outputs_go(tmp_path):
    assert common.start_line(_tiny_config(tmp_path), "CPU") == (
        f"paired_mnist, variant factorgan: training to step 4 on CPU in float32 (auto: bfloat16 "
        f"does not pay for this experiment's small networks); outputs in {tmp_path}/paired_mnist/tiny")
    settings = _tiny_config(tmp_path, eval_only=True, variant="gan", precision="bfloat16")
    assert common.start_line(settings, "2 GPUs") == (
        f"paired_mnist, variant gan: evaluating the last checkpoint on 2 GPUs in bfloat16 (as "
        f"set); outputs in {tmp_path}/paired_mnist/tiny")
