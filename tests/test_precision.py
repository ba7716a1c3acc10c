"""--precision: what auto chooses on which hardware, the networks it builds, what a
run records, and the settings of earlier versions (mixed_precision)."""

import dataclasses
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import precision, run_folder
from tf_factorgan.experiments import (arrays, audio_separation, common, image2image, image_pairs,
                                      paired_mnist)

X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n"
X86_PLAIN = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize("cpuinfo, flags", [
    (X86_BF16, ("avx512_bf16",)),
    (X86_BF16.replace("amx_tile", "amx_tile amx_bf16"), ("avx512_bf16", "amx_bf16")),
    (X86_PLAIN, ()),
    (ARM_BF16, ("bf16",)),
])
def test_the_cpus_bfloat16_flags_are_read_from_cpuinfo(tmp_path, cpuinfo, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert precision.cpu_bf16_flags(str(path)) == flags
    assert precision.cpu_bf16_flags(str(tmp_path / "absent")) == ()


@pytest.mark.parametrize("setting, gpus, cpu_flags, expected", [
    ("auto", [], ("avx512_bf16",), ("bfloat16", "auto: the CPU has AVX512_BF16")),
    ("auto", [], ("avx512_bf16", "amx_bf16"), ("bfloat16", "auto: the CPU has AVX512_BF16, AMX_BF16")),
    ("auto", [], (), ("float32", "auto: the CPU has no native bfloat16")),
    # A GPU computes, so its capability decides, whatever the CPU has.
    ("auto", [(9, 0)], (), ("bfloat16", "auto: GPU compute capability 9.0")),
    ("auto", [(8, 0), (7, 0)], (), ("bfloat16", "auto: GPU compute capability 8.0")),
    ("auto", [(7, 5)], ("avx512_bf16",),
     ("float32", "auto: GPU compute capability 7.5 has no native bfloat16")),
    ("float32", [(9, 0)], ("avx512_bf16",), ("float32", "as set")),
    ("bfloat16", [], (), ("bfloat16", "as set")),
])
def test_auto_chooses_bfloat16_where_the_computing_device_has_it(setting, gpus, cpu_flags, expected):
    assert precision.choose(setting, gpus, cpu_flags) == expected


def test_auto_keeps_float32_for_experiments_where_bfloat16_does_not_pay():
    small = ("float32", "auto: bfloat16 does not pay for this experiment's small networks")
    assert precision.choose("auto", [(9, 0)], ("avx512_bf16",), pays=False) == small
    assert precision.choose("bfloat16", [], (), pays=False) == ("bfloat16", "as set")
    assert not paired_mnist.PairedMnistConfig.BFLOAT16_PAYS and not arrays.ArraysConfig.BFLOAT16_PAYS
    assert all(config.BFLOAT16_PAYS for config in (image2image.Image2ImageConfig, image_pairs.ImagePairsConfig,
                                                   audio_separation.AudioSeparationConfig))
    os.environ["TF_FACTORGAN_CPU_FLAGS"] = "avx512_bf16"
    try:
        precision.resolve.cache_clear()
        assert common.start_line(_config("/runs"), "CPU") == (
            "paired_mnist, variant factorgan: training to step 2 on CPU in float32 (auto: bfloat16 "
            "does not pay for this experiment's small networks); outputs in /runs/paired_mnist/bf16")
        settings = image2image.Image2ImageConfig(out_path="/runs")
        assert " on CPU in bfloat16 (auto: the CPU has AVX512_BF16);" in common.start_line(settings, "CPU")
    finally:
        os.environ["TF_FACTORGAN_CPU_FLAGS"] = ""
        precision.resolve.cache_clear()


def test_the_tests_compute_in_float32_whatever_the_cpu():
    # conftest.py hides the CPU's flags: numbers asserted elsewhere do not depend on them.
    assert os.environ["TF_FACTORGAN_CPU_FLAGS"] == ""
    assert precision.resolve("auto") == ("float32", "auto: the CPU has no native bfloat16")
    with pytest.raises(ValueError, match="precision 'half': expected one of auto, float32, bfloat16"):
        precision.resolve("half")


def test_the_policy_holds_while_networks_are_built_and_is_restored():
    with precision.policy("bfloat16") as used:
        assert used == "bfloat16"
        layer = keras.layers.Dense(3)
        layer.build((None, 2))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert layer.compute_dtype == "bfloat16" and layer.kernel.dtype == "float32"


def _config(tmp_path, **kw):
    return paired_mnist.PairedMnistConfig(
        num_joint_samples=40, batch_size=10, steps=2, steps_per_call=1, log_every=1,
        image_every=2, checkpoint_every=2, out_path=str(tmp_path), eval_samples=100,
        min_classifier_accuracy=0.0, experiment_name="bf16", **kw)


def test_a_bfloat16_run_computes_in_bfloat16_keeps_float32_weights_and_records_it(tmp_path, digits):
    config = _config(tmp_path, precision="bfloat16")
    data = paired_mnist.build_data(config, *digits)
    metrics = common.run_experiment(paired_mnist.TASK, config, data, tf.distribute.get_strategy())
    assert metrics["compute_precision"] == "bfloat16" and metrics["step"] == 2
    assert np.isfinite(metrics["fid_upper"]) and np.isfinite(metrics["dependency_distance"])
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    for network in loop.gan_step.models.networks():
        dense = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dense)]
        # The hidden layers compute in bfloat16, the output layer in float32.
        assert [layer.compute_dtype for layer in dense] == ["bfloat16", "bfloat16", "float32"], network.name
        assert all(variable.dtype == "float32" for variable in network.weights), network.name
        inputs = tf.zeros([2, dense[0].kernel.shape[0]])
        assert network(inputs).dtype == tf.float32, network.name
    recorded = json.load(open(os.path.join(config.run_dir, "metrics.json")))
    assert recorded["compute_precision"] == "bfloat16" and recorded["config"]["precision"] == "bfloat16"


def test_the_mixed_precision_setting_of_earlier_versions_becomes_precision(tmp_path):
    assert common.upgraded_settings({"mixed_precision": True, "nz": 3}) == {
        "precision": "bfloat16", "nz": 3}
    assert common.upgraded_settings({"mixed_precision": False}) == {"precision": "float32"}
    # An earlier float32 run does not switch to bfloat16 silently when resumed with auto.
    config = _config(tmp_path)
    os.makedirs(os.path.join(config.run_dir, "checkpoints"))
    open(os.path.join(config.run_dir, "checkpoints", "ckpt-2.index"), "w").close()
    old = {name: value for name, value in common.run_settings(config).items() if name != "precision"}
    with open(os.path.join(config.run_dir, run_folder.SETTINGS_FILE), "w") as f:
        json.dump({"settings": {**old, "mixed_precision": False}, "history": []}, f)
    with pytest.raises(run_folder.SettingsChanged,
                       match=r'precision: "float32" -> "auto"\. to change precision from here on, '
                             r"add allow_changed=precision"):
        common.check_run_settings(config)
    assert not common.check_run_settings(dataclasses.replace(config, precision="float32")).changed
    check = common.check_run_settings(dataclasses.replace(config, allow_changed=("precision",)))
    assert check.changed == {"precision": ("float32", "auto")}
