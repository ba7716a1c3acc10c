"""Uncertainty over the wire: predict_samples of a one-hot segmentation export and of a
separation export, through the development server's REST and gRPC APIs, agree with the
in-process modules."""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import SERVING_LOAD_SIZE as LOAD_SIZE
from tests.conftest import SERVING_NZ as NZ
from tests.conftest import tiny_separator


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tf_factorgan.export import savedmodel
    from tf_factorgan.serving import client, config
    from tf_factorgan.serving.dev_server import DevServer
    from tf_factorgan.serving.repository import ModelRepository
    from tf_factorgan.models.unet import UNet

    tf.keras.utils.set_random_seed(0)
    generator = UNet(20, ngf=2, noise_stages=2, noise_map_channels=2, output_activation="softmax")
    generator(tf.zeros([1, LOAD_SIZE, LOAD_SIZE, 3]), tf.zeros([1, NZ]))
    modules = {"segmentation": savedmodel.segmentation_module(generator, LOAD_SIZE, NZ, 3, encoding="one_hot"),
               "separation": savedmodel.separation_module(tiny_separator(), NZ, seed=5)}
    base = str(tmp_path_factory.mktemp("exports"))
    for name, module in modules.items():
        savedmodel.publish(module, base, name, module.check)
    repository = ModelRepository(config.parse(config.write_for_export_base(base)))
    # A 64 MiB budget per request: one sample of a 128 x 128 image fits, 32 do not.
    dev = DevServer(repository, rest_port=0, grpc_port=0, max_request_memory_bytes=64 << 20).start()
    clients = {"rest": client.RestClient(f"localhost:{dev.rest_port}"),
               "grpc": client.GrpcClient(f"localhost:{dev.grpc_port}")}
    yield modules, clients
    clients["grpc"].close()
    dev.stop()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_segmentation_samples_over_the_wire(server, protocol):
    modules, clients = server
    images = np.random.default_rng(0).random((2, 20, 24, 3)).astype(np.float32)
    seeds = np.array([1, 2], np.int64)
    inputs = {"images": images, "seed": seeds, "num_samples": np.array(4, np.int32)}
    got = clients[protocol].predict("segmentation", inputs, "predict_samples")
    expected = modules["segmentation"].sample_maps(images, seeds, 4)
    assert set(got) == set(expected) == {"sample_class_ids", "class_ids", "label_rgb", "agreement", "mean",
                                         "variance"}
    assert got["sample_class_ids"].shape == (2, 4, 20, 24) and got["mean"].shape == (2, 20, 24, 19)
    np.testing.assert_array_equal(got["class_ids"], expected["class_ids"].numpy())
    np.testing.assert_allclose(got["agreement"], expected["agreement"].numpy(), atol=1e-6)
    np.testing.assert_allclose(got["variance"], expected["variance"].numpy(), atol=1e-5)
    assert np.all((0.25 <= got["agreement"]) & (got["agreement"] <= 1.0))


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_separation_samples_over_the_wire(server, protocol):
    modules, clients = server
    waveform = (0.1 * np.random.default_rng(1).standard_normal((1, 30000))).astype(np.float32)
    inputs = {"waveform": waveform, "sample_rate": np.array(22050, np.int32), "num_samples": np.array(2, np.int32)}
    got = clients[protocol].predict("separation", inputs, "predict_samples")
    expected = modules["separation"].separate_samples(waveform, 22050, 2)
    for name in ("vocals", "accompaniment"):
        assert got[f"{name}_samples"].shape == (1, 2, 30000)
        np.testing.assert_allclose(got[f"{name}_mean"], expected[f"{name}_mean"].numpy(), atol=1e-5)


def test_too_many_samples_are_refused_naming_the_input(server):
    _, clients = server
    from tf_factorgan.serving.client import ServingError

    images = np.zeros((1, 16, 16, 3), np.float32)
    with pytest.raises(ServingError, match="num_samples must be <= 32") as error:
        clients["rest"].predict("segmentation", {"images": images, "seed": np.array([1], np.int64),
                                                 "num_samples": np.array(64, np.int32)}, "predict_samples")
    assert error.value.code == "INVALID_ARGUMENT"


def test_the_memory_budget_counts_every_sample(server):
    """Over gRPC (no JSON response to count): one sample of a 128 x 128 image fits the
    64 MiB budget, 32 samples run the graph 32 times and do not."""
    _, clients = server
    from tf_factorgan.serving.client import ServingError

    inputs = {"images": np.zeros((1, 128, 128, 3), np.float32), "seed": np.array([1], np.int64)}
    one = clients["grpc"].predict("segmentation", {**inputs, "num_samples": np.array(1, np.int32)},
                                  "predict_samples")
    assert one["sample_class_ids"].shape == (1, 1, 128, 128)
    with pytest.raises(ServingError, match="max_request_memory_mb") as error:
        clients["grpc"].predict("segmentation", {**inputs, "num_samples": np.array(32, np.int32)},
                                "predict_samples")
    assert error.value.code == "RESOURCE_EXHAUSTED"
