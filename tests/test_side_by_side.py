"""benchmarks/side_by_side.py without PyTorch and without timing anything: the FLOP
count (against the issue's figures), the counted parameters (against our networks),
the parameter check that refuses a row, the report and the arguments."""

import ast
import os

import numpy as np
import pytest

from benchmarks import side_by_side as sbs
from tests.conftest import REPO_ROOT

GIGA = 1e9


def test_update_flops_of_the_segmentation_default():
    # noise_stages=3: 32 noise-map channels into the last three decoder stages.
    assert round(sbs.update_flops(128)["total"] / GIGA, 1) == 763.7
    assert round(sbs.update_flops(64)["total"] / GIGA, 1) == 173.3


def test_without_noise_maps_the_count_is_the_issue_s():
    # Issue 26 states 711.9 GFLOP per update at 128x128 and 160.4 at 64x64.
    assert sbs.update_flops(128, noise_stages=0)["total"] / GIGA == pytest.approx(711.9, abs=0.15)
    assert sbs.update_flops(64, noise_stages=0)["total"] / GIGA == pytest.approx(160.4, abs=0.1)


def test_update_flops_add_up():
    flops = sbs.update_flops(64)
    assert flops["discriminator_rounds"] + flops["generator_update"] == flops["total"]
    # Two rounds: doubling disc_iter adds two rounds' worth.
    assert sbs.update_flops(64, disc_iter=4)["total"] - flops["total"] == flops["discriminator_rounds"]


def test_pass_flops_follow_the_counting_rule():
    first = sbs.Layer(3, 4, 3, 8, reads_input=True)   # 8*8*9*3*4 = 6912 multiply-adds
    inner = sbs.Layer(4, 5, 1, 8)                     # 8*8*4*5 = 1280
    layers, rows = [first, inner], 10
    forward_first, forward_inner = 2 * 6912 * rows, 2 * 1280 * rows
    assert sbs.pass_flops(layers, rows, backward=False) == forward_first + forward_inner
    # Trained: the first layer's weight gradient only (its input is data), the inner
    # layer's input and weight gradients.
    assert sbs.pass_flops(layers, rows, train_weights=True) == 2 * forward_first + 3 * forward_inner
    # A discriminator in the generator update: input gradients everywhere, no weights.
    assert sbs.pass_flops(layers, rows, input_gradient=True) == 2 * (forward_first + forward_inner)


def test_conv_limit_flops():
    # Forward, input gradient, weight gradient: 3 x 2 x 25 x 128^2 x 3^2 x 64^2.
    assert sbs.conv_limit_flops() == 3 * 2 * 25 * 128 * 128 * 9 * 64 * 64 == 90_596_966_400


def _keras_counts(model) -> dict:
    count = lambda variables: int(sum(np.prod(v.shape) for v in variables))  # noqa: E731
    return {"trainable": count(model.trainable_variables), "state": count(model.non_trainable_variables)}


@pytest.mark.parametrize("noise_stages", [0, 3])
def test_counted_generator_parameters_are_our_unet_s(noise_stages):
    import tensorflow as tf

    from tf_factorgan.models import unet

    generator = unet.UNet(3, ngf=sbs.NGF, noise_channels=sbs.NOISE_CHANNELS, noise_stages=noise_stages,
                          noise_map_channels=sbs.NOISE_MAP_CHANNELS)
    generator(tf.zeros([1, 64, 64, 3]), tf.zeros([1, sbs.NZ]))
    assert _keras_counts(generator) == sbs.parameters(sbs.unet_layers(64, noise_stages))


@pytest.mark.parametrize("size", [64, 128])
def test_counted_discriminator_parameters_are_our_discriminators(size):
    import tensorflow as tf

    from tf_factorgan.models.conv import ConvDiscriminator

    for name, channels in sbs.DISCRIMINATOR_CHANNELS.items():
        discriminator = ConvDiscriminator(filters=sbs.DISC_FILTERS, name=name)
        discriminator(tf.zeros([1, size, size, channels]))
        assert _keras_counts(discriminator) == sbs.parameters(sbs.discriminator_layers(size, channels)), name


def test_parameter_mismatch_names_the_network_and_the_counts():
    counted = sbs.update_parameters(64)
    assert sbs.parameter_mismatch(counted, counted, counted) is None
    theirs = {**counted, "p_dependency": {**counted["p_dependency"], "trainable": 175_000}}
    line = sbs.parameter_mismatch(counted, theirs, counted)
    assert line == "p_dependency trainable parameters differ: 175,328 ours, 175,000 PyTorch, 175,328 counted"
    missing = {k: v for k, v in counted.items() if k != "generator"}
    assert sbs.parameter_mismatch(counted, missing, counted).startswith("generator trainable parameters differ")


def _result(framework, seconds, parameters, flops):
    # One core busy in every call.
    return {"framework": framework, "seconds": seconds, "cpu_seconds": seconds, "parameters": parameters,
            "flops": flops, "memory_format": "channels_last", "compute_dtype": "float32", "versions": {}}


def test_rows_report_medians_over_every_rep_and_refuse_unequal_networks():
    configuration = sbs.Configuration(sbs.UPDATE, 64, "float32", 2)
    counted = {"noise_stages": 3, "parameters": {64: sbs.update_parameters(64)}}
    flops = sbs.update_flops(64)["total"]
    same = counted["parameters"][64]
    ours = [_result("ours", [1.0, 5.0], same, flops), _result("ours", [2.0, 3.0], same, flops)]
    theirs = [_result("pytorch", [4.0, 4.0, 6.0], same, flops)]
    row = sbs.summarise(configuration, ours, theirs, counted)
    assert (row.ours_seconds, row.pytorch_seconds, row.refused) == (2.5, 4.0, None)
    assert (row.ours_cores, row.pytorch_cores) == (1.0, 1.0)
    assert row.rate(row.ours_seconds) == pytest.approx(flops / 2.5 / GIGA)

    bigger = {**same, "generator": {"trainable": same["generator"]["trainable"] + 1, "state": 3968}}
    refused = sbs.summarise(configuration, ours, [_result("pytorch", [4.0], bigger, flops)], counted)
    assert refused.refused.startswith("generator trainable parameters differ")
    in_bfloat16 = sbs.summarise(sbs.Configuration(sbs.UPDATE, 64, "bfloat16", 2), ours, theirs, counted)
    assert in_bfloat16.refused == "ours computed in float32, not bfloat16"
    conv = sbs.Configuration(sbs.CONV, 128, "float32", 2)
    conv_flops = sbs.conv_limit_flops()
    conv_row = sbs.summarise(conv, [_result("ours", [0.5], None, conv_flops)],
                             [_result("pytorch", [0.4], None, conv_flops)], counted)
    header = {"date": "today", "cpu": "a CPU", "cores": 2, "versions_line": "", "command": "cmd",
              "rounds": 2, "reps": 2, "flops": {64: flops}, "noise_stages": 3}
    report = sbs.markdown([row, refused, conv_row], header)
    assert "| factorgan 64x64 float32 | 2 | 2.500 | 4.000 | 0.62 |" in report
    assert "not reported: generator trainable parameters differ" in report
    # The conv limit is the faster framework's rate (PyTorch's here: 0.4 s).
    limit = conv_flops / 0.4 / GIGA
    assert f"| {100 * flops / 2.5 / GIGA / limit:.0f} |" in report
    assert "| float32 | 2 | 0.500 | 0.400 | 1.25 | 181.2 | 226.5 | 1.0 / 1.0 | channels_last |" in report


def test_missing_torch_python_is_one_clear_line(tmp_path):
    args = sbs.parse_arguments([f"--torch_python={tmp_path}/python"])
    problem = sbs.check_arguments(args)
    assert "not found" in problem and "benchmarks/requirements-torch.txt" in problem
    assert "\n" not in problem


def test_bad_sizes_and_precisions_are_refused(tmp_path):
    python = tmp_path / "python"
    python.write_text("")
    python.chmod(0o755)
    assert "multiple of 16" in sbs.check_arguments(sbs.parse_arguments([f"--torch_python={python}",
                                                                        "--sizes=100"]))
    assert "float16" in sbs.check_arguments(sbs.parse_arguments([f"--torch_python={python}",
                                                                 "--precisions=float16"]))
    assert sbs.check_arguments(sbs.parse_arguments([f"--torch_python={python}"])) is None


def _imports(path: str, top_level_only: bool = False) -> set:
    with open(os.path.join(REPO_ROOT, path)) as f:
        tree = ast.parse(f.read())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_workers_keep_their_frameworks_apart():
    assert not _imports("benchmarks/torch_networks.py") & {"tensorflow", "keras", "tf_factorgan"}
    # The driver module is imported by both workers: nothing but the standard library at
    # its top; each worker imports its framework inside its own functions.
    assert not _imports("benchmarks/side_by_side.py", top_level_only=True) & {
        "tensorflow", "keras", "tf_factorgan", "torch", "numpy", "absl"}
