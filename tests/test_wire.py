"""REST JSON bodies in TF Serving's row and columnar formats, b64 strings and TensorProtos:
what the client writes the server reads back, and bad values name their field."""

import numpy as np
import pytest
import tensorflow as tf

from serving import wire
from serving.wire import ServingError

DTYPES = {"images": tf.float32, "seed": tf.int64}


@pytest.mark.parametrize("row_format", [True, False])
def test_request_round_trip(row_format):
    inputs = {"images": np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3) / 7, "seed": np.array([3, 4])}
    body = wire.predict_request_body(inputs, "predict_seeded", row_format)
    assert body["signature_name"] == "predict_seeded"
    assert ("instances" in body) == row_format and ("inputs" in body) != row_format
    if row_format:
        assert len(body["instances"]) == 2 and body["instances"][1]["seed"] == 4
    parsed, parsed_row = wire.parse_predict_request(body, DTYPES)
    assert parsed_row == row_format
    np.testing.assert_array_equal(parsed["images"], inputs["images"])
    assert parsed["seed"].dtype == np.int64 and parsed["seed"].tolist() == [3, 4]


def test_single_input_may_be_unnamed_and_binary():
    png = bytes(range(256))
    body = {"instances": [{"b64": "AAE="}, {"b64": wire.to_json(np.array([png], dtype=object), "x_bytes")[0]["b64"]}]}
    parsed, _ = wire.parse_predict_request(body, {"images": tf.string})
    assert parsed["images"].tolist() == [b"\x00\x01", png]
    parsed, _ = wire.parse_predict_request({"inputs": [[1, 2]]}, {"waveform": tf.float32})
    assert parsed["waveform"].dtype == np.float32 and parsed["waveform"].shape == (1, 2)


def test_response_formats():
    outputs = {"label_rgb": np.zeros((2, 1, 1, 3), np.float32), "class_ids": np.array([[[1]], [[2]]], np.int32)}
    rows = wire.predict_response_body(outputs, row_format=True)
    assert rows == {"predictions": [
        {"label_rgb": [[[0.0, 0.0, 0.0]]], "class_ids": [[1]]},
        {"label_rgb": [[[0.0, 0.0, 0.0]]], "class_ids": [[2]]},
    ]}
    columns = wire.predict_response_body(outputs, row_format=False)
    assert columns["outputs"]["class_ids"] == [[[1]], [[2]]]
    back = wire.parse_predict_response(rows)
    assert back["label_rgb"].dtype == np.float32 and back["class_ids"].tolist() == [[[1]], [[2]]]
    # A lone output comes unnamed; `_bytes` strings as b64.
    lone = wire.predict_response_body({"label_png_bytes": np.array([b"\x89PNG"], dtype=object)}, True)
    assert lone == {"predictions": [{"b64": "iVBORw=="}]}
    assert wire.parse_predict_response(lone)["output"].tolist() == [b"\x89PNG"]
    # Other string outputs stay text when they are UTF-8.
    assert wire.to_json(np.array([b"car"], dtype=object), "label") == ["car"]


@pytest.mark.parametrize("value, dtype, words", [
    ([[1, 2], [3]], tf.float32, ["unequal"]),
    ("cat", tf.float32, ["float32", "strings"]),
    ([1.5], tf.int64, ["int64", "fractional"]),
    ([256], tf.uint8, ["uint8", "do not fit"]),
    ([True], tf.float32, ["true/false"]),
    ([{"b64": "%%"}], tf.string, ["base64"]),
    ([{"data": "AA=="}], tf.string, ['{"b64"']),
    ([3], tf.string, ["strings"]),
])
def test_bad_values_name_their_field(value, dtype, words):
    with pytest.raises(ServingError) as raised:
        wire.from_json(value, dtype, "inputs.x")
    assert raised.value.code == "INVALID_ARGUMENT" and raised.value.http_status == 400
    assert raised.value.message.startswith("inputs.x")
    for word in words:
        assert word in raised.value.message


@pytest.mark.parametrize("body, words", [
    ([1], ["JSON object"]),
    ({"instances": []}, ["non-empty"]),
    ({"instances": [{"images": 1}]}, ["missing ['seed']"]),
    ({"inputs": {"images": 1, "seed": 1, "extra": 2}}, ["unknown ['extra']"]),
    ({"inputs": [1]}, ["name them"]),
    ({"inputs": 1, "signature": "x"}, ["unknown fields ['signature']"]),
])
def test_bad_bodies(body, words):
    with pytest.raises(ServingError) as raised:
        wire.parse_predict_request(body, DTYPES)
    for word in words:
        assert word in raised.value.message


def test_row_format_needs_batched_inputs():
    with pytest.raises(ValueError, match="columnar"):
        wire.predict_request_body({"waveform": np.zeros((1, 4)), "sample_rate": np.array(8000)}, "s", True)


def test_tensor_protos_round_trip():
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3), np.array(5, np.int32), np.array([b"a", b"\xff"], dtype=object)):
        back = wire.from_tensor_proto(wire.to_tensor_proto(array), "x")
        assert back.shape == array.shape and back.tolist() == array.tolist()
