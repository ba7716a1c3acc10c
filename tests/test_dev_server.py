"""The development server and the clients: REST and gRPC round trips return what the
in-process SavedModel returns, status and metadata follow TF Serving's messages, every
bad request gets its documented error while the server keeps serving, and concurrent
clients all succeed."""

import concurrent.futures
import http.client
import io
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from serving import client as serving_client
from serving.client import GrpcClient, RestClient
from serving.wire import ServingError

RATE = 16000  # clients send their own rate; the graph resamples to 22050 Hz


def _clients(server):
    return [
        RestClient(f"localhost:{server.rest_port}"),
        GrpcClient(f"localhost:{server.grpc_port}"),
    ]


@pytest.fixture(scope="module")
def clients(dev_server):
    return _clients(dev_server)


def _png(seed: int, size=(20, 30)) -> tuple[np.ndarray, bytes]:
    image = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return image, buffer.getvalue()


def _loaded(serving_exports, name):
    base, _ = serving_exports
    return tf.saved_model.load(os.path.join(base, name, "1"))


@pytest.mark.parametrize("row_format", [True, False])
def test_segmentation_round_trip_matches_in_process(serving_exports, clients, row_format):
    loaded = _loaded(serving_exports, "segmentation")
    images = np.stack([_png(seed)[0] for seed in (1, 2)]).astype(np.float32) / 255.0
    expected = {k: v.numpy() for k, v in loaded.signatures["serving_default"](images=tf.constant(images)).items()}
    for client in clients:
        got = client.predict("segmentation", {"images": images}, row_format=row_format)
        assert set(got) == {"label_rgb", "class_ids"}
        assert got["class_ids"].dtype == np.int32 and got["label_rgb"].dtype == np.float32
        np.testing.assert_array_equal(got["class_ids"], expected["class_ids"])
        # JSON carries floats as shortest round-trip decimals: exact for float32.
        np.testing.assert_array_equal(got["label_rgb"], expected["label_rgb"])


def test_seeded_and_bytes_signatures(serving_exports, clients):
    loaded = _loaded(serving_exports, "segmentation")
    image, png = _png(3)
    expected_png = loaded.signatures["predict_bytes"](images=tf.constant([png]))["label_png_bytes"][0].numpy()
    as_float = image[None].astype(np.float32) / 255.0
    seeds = np.array([9], np.int64)
    expected_seeded = loaded.signatures["predict_seeded"](images=as_float, seed=seeds)["label_rgb"].numpy()
    for client in clients:
        assert serving_client.segment_image(client, "segmentation", png) == expected_png
        got = client.predict("segmentation", {"images": as_float, "seed": seeds}, "predict_seeded", row_format=True)
        np.testing.assert_array_equal(got["label_rgb"], expected_seeded)
    assert Image.open(io.BytesIO(expected_png)).size == (30, 20)


@pytest.mark.parametrize("channels", [1, 2])
def test_separation_round_trip_matches_in_process(serving_exports, clients, channels):
    loaded = _loaded(serving_exports, "separation")
    # Tones well below 8 kHz: the round trip through 22050 Hz keeps them.
    t = np.arange(RATE // 2)[:, None] / RATE
    phases = np.random.default_rng(channels).uniform(0, 2 * np.pi, (3, channels))
    audio = sum(0.05 * np.sin(2 * np.pi * f * t + p) for f, p in zip((220, 1000, 3000), phases))
    audio = audio.astype(np.float32)
    expected = loaded.signatures["serving_default"](
        waveform=tf.constant(audio[None]), sample_rate=tf.constant(RATE, tf.int32)
    )
    for client in clients:
        got = serving_client.separate_audio(client, "separation", audio, RATE)
        for name in ("vocals", "accompaniment"):
            assert got[name].shape == audio.shape and got[name].dtype == np.float32
            np.testing.assert_array_equal(got[name], expected[name].numpy()[0])
        # The mask splits the mixture: the estimates add up to it (resampled twice).
        total = got["vocals"] + got["accompaniment"]
        inner = slice(RATE // 10, -RATE // 10)
        assert np.sqrt(np.mean((total - audio)[inner] ** 2)) < 0.05 * np.sqrt(np.mean(audio**2))


def test_mono_waveform_keeps_rank(clients):
    audio = np.zeros((1, 4000), np.float32)
    for client in clients:
        got = client.predict("separation", {"waveform": audio, "sample_rate": np.array(8000, np.int32)})
        assert got["vocals"].shape == (1, 4000) and got["accompaniment"].shape == (1, 4000)


def test_status_and_metadata_follow_tf_serving(clients):
    for client in clients:
        assert client.status("segmentation") == {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        }
        assert client.status("separation", version=1)["model_version_status"][0]["version"] == "1"
        metadata = client.metadata("segmentation")
        assert metadata["model_spec"]["name"] == "segmentation"
        assert metadata["model_spec"]["version"] == "1"
        signature_map = metadata["metadata"]["signature_def"]
        assert signature_map["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
        signatures = signature_map["signature_def"]
        assert set(signatures) == {"serving_default", "predict_uint8", "predict_seeded", "predict_bytes"}
        images = signatures["serving_default"]["inputs"]["images"]
        assert images["dtype"] == "DT_FLOAT"
        assert [int(d["size"]) for d in images["tensor_shape"]["dim"]] == [-1, -1, -1, 3]
        waveform = client.metadata("separation")["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["waveform"]
        assert waveform["tensor_shape"]["unknown_rank"] is True


# --- Errors -----------------------------------------------------------------------

IMAGE = np.zeros((1, 8, 8, 3), np.float32)
BAD_REQUESTS = {
    # name: (call(client), code, words the message must contain)
    "unknown model": (lambda c: c.predict("nope", {"images": IMAGE}), "NOT_FOUND", ["'nope'", "segmentation"]),
    "unknown version": (lambda c: c.predict("segmentation", {"images": IMAGE}, version=7), "NOT_FOUND", ["version 7", "[1]"]),
    "unknown label": (lambda c: c.status("segmentation", label="stable"), "NOT_FOUND", ["'stable'"]),
    "unknown signature": (lambda c: c.predict("segmentation", {"images": IMAGE}, "serve"), "NOT_FOUND", ["signature_name 'serve'", "predict_bytes"]),
    "missing input": (lambda c: c.predict("separation", {"waveform": np.zeros((1, 100), np.float32)}), "INVALID_ARGUMENT", ["sample_rate"]),
    "extra input": (lambda c: c.predict("segmentation", {"images": IMAGE, "seed": np.array([1])}), "INVALID_ARGUMENT", ["seed", "images"]),
    "wrong rank": (lambda c: c.predict("segmentation", {"images": IMAGE[0]}), "INVALID_ARGUMENT", ["'images'", "[8, 8, 3]"]),
    "wrong channels": (lambda c: c.predict("segmentation", {"images": IMAGE[..., :2]}), "INVALID_ARGUMENT", ["'images'", "[-1, -1, -1, 3]"]),
    "wrong waveform rank": (lambda c: c.predict("separation", {"waveform": np.zeros((1, 2, 3, 4), np.float32), "sample_rate": np.array(8000, np.int32)}), "INVALID_ARGUMENT", ["waveform must be [N, samples]"]),
    "bad sample rate": (lambda c: c.predict("separation", {"waveform": np.zeros((1, 100), np.float32), "sample_rate": np.array(0, np.int32)}), "INVALID_ARGUMENT", ["sample_rate must be positive"]),
    "undecodable image": (lambda c: c.predict("segmentation", {"images": np.array([b"not an image"], dtype=object)}, "predict_bytes"), "INVALID_ARGUMENT", ["'images'", "image"]),
    "seed per image": (lambda c: c.predict("segmentation", {"images": IMAGE, "seed": np.array([1, 2])}, "predict_seeded"), "INVALID_ARGUMENT", ["seed must hold one value per image"]),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_bad_requests_get_their_error_and_the_server_keeps_serving(clients, name):
    call, code, words = BAD_REQUESTS[name]
    for client in clients:
        with pytest.raises(ServingError) as raised:
            call(client)
        assert raised.value.code == code, (client.protocol, raised.value)
        for word in words:
            assert word in raised.value.message, (client.protocol, raised.value.message)
        assert client.status("segmentation")["model_version_status"][0]["state"] == "AVAILABLE"


def _raw_rest(server, method, path, body: bytes = b"", headers=None):
    connection = http.client.HTTPConnection("localhost", server.rest_port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


RAW_REST = {
    # name: (method, path, body, status, words)
    "malformed JSON": ("POST", "/v1/models/segmentation:predict", b'{"inputs": [1, 2', 400, ["not valid JSON"]),
    "neither format": ("POST", "/v1/models/segmentation:predict", b'{"data": 1}', 400, ['"instances"', '"inputs"']),
    "both formats": ("POST", "/v1/models/segmentation:predict", b'{"inputs": 1, "instances": [1]}', 400, ["exactly one"]),
    "ragged instances": ("POST", "/v1/models/segmentation:predict", b'{"instances": [[[[0, 0, 0]]], [[[0, 0]]]]}', 400, ["instances.images", "unequal"]),
    "string for a number": ("POST", "/v1/models/segmentation:predict", b'{"inputs": {"images": "cat"}}', 400, ["inputs.images", "float32"]),
    "fraction for an int": ("POST", "/v1/models/separation:predict", b'{"inputs": {"waveform": [[0.0]], "sample_rate": 8000.5}}', 400, ["inputs.sample_rate", "int32"]),
    "uint8 out of range": ("POST", "/v1/models/segmentation:predict", b'{"signature_name": "predict_uint8", "inputs": [[[[300, 0, 0]]]]}', 400, ["inputs.images", "uint8"]),
    "bad base64": ("POST", "/v1/models/segmentation:predict", b'{"signature_name": "predict_bytes", "instances": [{"b64": "%%%"}]}', 400, ["instances.images", "base64"]),
    "scalar input in row format": ("POST", "/v1/models/separation:predict", b'{"instances": [{"waveform": [0.0], "sample_rate": 8000}]}', 400, ["'sample_rate'"]),
    "unknown endpoint": ("GET", "/v2/models/segmentation", b"", 404, ["/v2/models/segmentation"]),
    "version not a number": ("GET", "/v1/models/segmentation/versions/latest", b"", 400, ["'latest'"]),
    "classify": ("POST", "/v1/models/segmentation:classify", b"{}", 404, [":predict"]),
}


@pytest.mark.parametrize("name", sorted(RAW_REST))
def test_malformed_rest_bodies(dev_server, name):
    method, path, body, status, words = RAW_REST[name]
    got_status, payload = _raw_rest(dev_server, method, path, body, {"Content-Type": "application/json"})
    assert got_status == status, payload
    for word in words:
        assert word in payload["error"], payload["error"]
    assert _raw_rest(dev_server, "GET", "/v1/models/segmentation")[0] == 200


def test_oversized_payloads_are_refused(dev_server, clients):
    # The server's limit is 4 MiB; 8 MiB of float32 samples.
    too_big = np.zeros((1, 2 << 20), np.float32)
    for client in clients:
        with pytest.raises(ServingError) as raised:
            client.predict("separation", {"waveform": too_big, "sample_rate": np.array(8000, np.int32)})
        assert raised.value.code == "RESOURCE_EXHAUSTED"
        if client.protocol == "rest":
            assert "exceeds the server's limit of 4194304 bytes" in raised.value.message
        assert client.status("separation")["model_version_status"][0]["state"] == "AVAILABLE"


def test_concurrent_clients(dev_server):
    """200 requests from 8 threads, mixed protocols, models and signatures: no errors,
    and every answer is the one the request's own input gets alone."""
    pngs = [_png(seed, (12, 12))[1] for seed in range(4)]
    expected = {}
    reference = _clients(dev_server)[1]
    for i, png in enumerate(pngs):
        expected[i] = serving_client.segment_image(reference, "segmentation", png)

    def request(index):
        client = protocol_clients[index % 2]
        if index % 5 == 4:
            audio = np.full((2000, 2), 0.01 * (index % 3), np.float32)
            out = serving_client.separate_audio(client, "separation", audio, 8000)
            return out["vocals"].shape == audio.shape
        return serving_client.segment_image(client, "segmentation", pngs[index % 4]) == expected[index % 4]

    protocol_clients = _clients(dev_server)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(request, range(200)))
    assert results == [True] * 200


# --- A real tensorflow_model_server -----------------------------------------------


def _wait_for(client, model, seconds=60):
    deadline = time.time() + seconds
    while True:
        try:
            return client.status(model)
        except ServingError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def test_against_tensorflow_model_server(serving_exports, dev_server):
    """The same client calls give the same answers from TF Serving itself."""
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip(
            "tensorflow_model_server is not on PATH (TF Serving ships as the tensorflow/serving "
            "Docker image or from its apt repository, see README)"
        )
    base, _ = serving_exports
    process = subprocess.Popen(
        [binary, "--port=18500", "--rest_api_port=18501", f"--model_config_file={base}/models.config"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        real = RestClient("localhost:18501")
        _wait_for(real, "segmentation")
        ours = _clients(dev_server)[0]
        png = _png(5)[1]
        assert serving_client.segment_image(real, "segmentation", png) == serving_client.segment_image(ours, "segmentation", png)
        audio = np.full((4000, 2), 0.01, np.float32)
        np.testing.assert_allclose(
            serving_client.separate_audio(real, "separation", audio, 8000)["vocals"],
            serving_client.separate_audio(ours, "separation", audio, 8000)["vocals"], atol=1e-6,
        )
        assert real.status("segmentation") == ours.status("segmentation")
    finally:
        process.terminate()
        process.wait(timeout=30)
