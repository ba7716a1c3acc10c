"""REST JSON bodies in TF Serving's row and columnar formats, b64 strings and TensorProtos:
what the client writes the server reads back, and bad values name their field."""

import io
import json
import math
import struct
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_factorgan.serving import wire
from tf_factorgan.serving.wire import ServingError

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
    ([{"b64": "AAé="}], tf.string, ["base64", "ASCII"]),
    (["\ud800"], tf.string, ["not valid Unicode"]),
    ([[1, 2], 3], tf.float32, ["unequal"]),
    ([[["a"], "b"]], tf.string, ["unequal"]),
    ([10**30], tf.int64, ["beyond 64 bits"]),
    ([None], tf.float32, ["null"]),
    ([math.inf], tf.int32, ["not finite"]),
    ([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], tf.float32, ["deeper than 32"]),
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


def test_element_bound_is_checked_before_conversion():
    with pytest.raises(ServingError) as raised:
        wire.from_json([[0.0] * 11] * 10, tf.float32, "inputs.x", max_elements=100)
    assert raised.value.code == "RESOURCE_EXHAUSTED" and "shape [10, 11]" in raised.value.message
    assert wire.from_json([[0.0] * 10] * 10, tf.float32, "inputs.x", max_elements=100).shape == (10, 10)


def test_non_finite_numbers():
    """Inputs: check_finite refuses them. Outputs: written as TF Serving does (bare
    NaN / Infinity / -Infinity literals), which the clients read back."""
    with pytest.raises(ServingError, match="inputs.x: 2 of 3 values are not finite"):
        wire.check_finite(np.array([1.0, np.nan, -np.inf], np.float32), "inputs.x")
    wire.check_finite(np.array([1, 2], np.int32), "inputs.x")
    text = json.dumps(wire.predict_response_body({"y": np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)}, False))
    assert text == '{"outputs": [NaN, Infinity, -Infinity, 1.5]}'
    back = wire.parse_predict_response(json.loads(text))["output"]
    assert np.isnan(back[0]) and back[1:].tolist() == [np.inf, -np.inf, 1.5]


def _peak_parse_bytes(body: bytes, dtypes: dict) -> int:
    tracemalloc.start()
    try:
        wire.parse_predict_request(json.loads(body), dtypes)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name, inputs, dtypes", [
    ("stereo audio", {"waveform": (0.1 * np.random.default_rng(0).standard_normal((1, 50_000, 2))).astype(np.float32), "sample_rate": np.array(8000, np.int32)}, {"waveform": tf.float32, "sample_rate": tf.int32}),
    ("zeros", {"waveform": np.zeros((1, 100_000), np.float32), "sample_rate": np.array(8000, np.int32)}, {"waveform": tf.float32, "sample_rate": tf.int32}),
    ("small images", {"images": np.zeros((4000, 1, 1, 3), np.uint8)}, {"images": tf.uint8}),
    ("binary strings", {"images": np.array([bytes(300)] * 2000, dtype=object)}, {"images": tf.string}),
])
def test_json_memory_estimate_bounds_what_parsing_takes(name, inputs, dtypes):
    """The estimate, made from the body's delimiters, is above what json.loads and the
    conversion to arrays allocate, and within 4 times it (so that a budget built on it
    does not refuse bodies that would fit)."""
    body = json.dumps(wire.predict_request_body(inputs, "s", False)).encode()
    peak = _peak_parse_bytes(body, dtypes)
    estimate = wire.json_memory_estimate(body)
    assert peak < estimate < 4 * peak, (name, peak, estimate)


def test_json_memory_estimate_counts_object_keys():
    """100k distinct keys took 15.7 MB to parse; without a cost per key the estimate
    was 7.4 MB."""
    body = json.dumps({"inputs": {f"k{i}": 0 for i in range(100_000)}}).encode()
    tracemalloc.start()
    json.loads(body)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < wire.json_memory_estimate(body) < 4 * peak


def test_json_size_estimates():
    audio = (0.1 * np.random.default_rng(0).standard_normal((1, 20_000, 2))).astype(np.float32)
    inputs = {"waveform": audio, "sample_rate": np.array(8000, np.int32)}
    size = len(json.dumps(wire.predict_request_body(inputs, "s", False)))
    assert 0.9 * size < wire.json_body_size_estimate(inputs) < 1.5 * size
    outputs = {"vocals": audio, "accompaniment": audio}
    tracemalloc.start()
    json.dumps(wire.predict_response_body(outputs, False)).encode()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < wire.json_response_memory_estimate(outputs) < 3 * peak


def _encoded(fmt: str, height: int, width: int, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True, "exif": b"Exif\0\0" + bytes(5000)}),
    ("GIF", {}), ("BMP", {}),
    ("WEBP", {}), ("WEBP", {"lossless": True}), ("WEBP", {"exif": b"Exif\0\0" + bytes(10)}),  # VP8, VP8L, VP8X
])
def test_image_pixels_from_headers(fmt, options):
    assert wire.image_pixels(_encoded(fmt, 21, 34, **options), "x") == 21 * 34


def test_image_pixels_edge_cases():
    # A top-down BMP stores a negative height.
    bmp = bytearray(_encoded("BMP", 5, 7))
    bmp[22:26] = struct.pack("<i", -5)
    assert wire.image_pixels(bytes(bmp), "x") == 35
    assert wire.image_pixels(b"not an image", "x") is None
    assert wire.image_pixels(b"BMW 3 series, a string input that starts with BM", "x") is None
    with pytest.raises(ServingError, match="x: a JPEG whose frame header"):
        wire.image_pixels(_encoded("JPEG", 8, 8)[:20], "x")
    with pytest.raises(ServingError, match="x: a PNG without its IHDR"):
        wire.image_pixels(b"\x89PNG\r\n\x1a\n\0\0", "x")
    with pytest.raises(ServingError, match="x: a WebP whose VP8, VP8L or VP8X header"):
        wire.image_pixels(_encoded("WEBP", 8, 8)[:24], "x")
    # A JPEG of nothing but empty segments: the walk stops, and refuses it.
    with pytest.raises(ServingError, match="frame header"):
        wire.image_pixels(b"\xff\xd8" + b"\xff\xfe\x00\x02" * 20_000, "x")


@pytest.mark.parametrize("proto", [
    tf.make_tensor_proto(0.5, shape=[2, 3]),  # TF's one-value fill form
    tf.make_tensor_proto(np.zeros((2, 3), np.float32)),
])
def test_well_formed_tensor_protos_pass(proto):
    size = wire.check_tensor_proto(proto, "x", max_elements=6)
    assert (size.shape, size.dtype, size.decoded_bytes, size.value) == ((2, 3), tf.float32, 24, None)
    assert wire.from_tensor_proto(proto, "x").shape == (2, 3)
    with pytest.raises(ServingError, match="over the server's limit of 5"):
        wire.check_tensor_proto(proto, "x", max_elements=5)


def test_string_sizes_count_every_element_a_value_fills():
    """A value filling its shape costs its length once per element (it was 8 bytes an
    element, whatever the length); so do the pixels of an image among them."""
    png = _encoded("PNG", 3, 5)
    fill = wire.check_tensor_proto(tf.make_tensor_proto(png, shape=[1000]), "x")
    assert (fill.string_bytes, fill.pixels) == (1000 * len(png), 1000 * 15)
    assert fill.decoded_bytes == 1000 * (len(png) + wire.STRING_ELEMENT_BYTES)
    listed = wire.check_tensor_proto(tf.make_tensor_proto([png, b"abc"]), "x")
    assert (listed.string_bytes, listed.pixels, listed.elements) == (len(png) + 3, 15, 2)
    array = wire.array_size(np.array([png, b"abc"], dtype=object), "x")
    assert (array.string_bytes, array.pixels, array.dtype) == (listed.string_bytes, 15, tf.string)
    with pytest.raises(ServingError, match=r"x\[0\]: the encoded image has 15 pixels, over the server's limit of 14"):
        wire.check_tensor_proto(tf.make_tensor_proto(png, shape=[1000]), "x", max_image_pixels=14)


def test_narrow_integer_values_are_checked_against_their_dtype():
    proto = tf.make_tensor_proto(np.array([0, 255], np.uint8))
    assert proto.tensor_content  # raw bytes always fit
    assert wire.check_tensor_proto(proto, "x").decoded_bytes == 2
    fits = tf.make_tensor_proto(np.array([[-128, 127]], np.int8))
    fits.ClearField("tensor_content")
    fits.int_val.extend([-128, 127])
    wire.check_tensor_proto(fits, "x")
    assert wire.from_tensor_proto(fits, "x").tolist() == [[-128, 127]]
    fits.int_val[1] = 128
    with pytest.raises(ServingError, match=r"x: int_val values in \[-128, 128\] do not fit int8 \[-128, 127\]"):
        wire.check_tensor_proto(fits, "x")


def test_one_element_tensors_carry_their_value():
    assert wire.check_tensor_proto(tf.make_tensor_proto(np.array(8000, np.int32)), "x").value == 8000
    assert wire.check_tensor_proto(tf.make_tensor_proto(np.array([[0.5]], np.float32)), "x").value == 0.5
    assert wire.array_size(np.array(44100, np.int32), "x").value == 44100
    assert wire.array_size(np.zeros(2, np.float32), "x").value is None
