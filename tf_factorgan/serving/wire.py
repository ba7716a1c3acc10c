"""The TF Serving API's wire formats, shared by the development server and the client.

REST (https://www.tensorflow.org/tfx/serving/api_rest), predict bodies:
  row format      {"signature_name": s, "instances": [instance, ...]}
                  an instance is the value of the only input, or {input: value}; the
                  instances are stacked along a new first axis, so every input must be
                  batched (no scalar inputs).
                  -> {"predictions": [value or {output: value}, ...]}
  columnar format {"signature_name": s, "inputs": value or {input: value}}
                  values are whole tensors of any rank.
                  -> {"outputs": value or {output: value}}
Binary strings travel as {"b64": "<base64>"}; string outputs whose names end in
`_bytes` come back that way. Errors are {"error": message} with an HTTP status.

Non-finite numbers: TF Serving reads `NaN`, `Infinity` and `-Infinity` literals and
writes non-finite outputs that way too (not strict JSON); `json` here does the same, so
the clients read them. The development server refuses non-finite inputs instead
(`check_finite`), since no exported model means anything by them.

gRPC carries tensors as TensorProtos (`to_tensor_proto` / `from_tensor_proto`);
`check_tensor_proto` compares a request's declared shape with the values it carries
before anything is allocated and returns its `TensorSize` (what decoding it costs,
fills and string bytes included; `array_size` is the same for a decoded array).
`json_memory_estimate` / `json_response_memory_estimate` bound what parsing and writing
a REST body cost in Python, and `image_pixels` reads an encoded image's size from its
header, so that servers can refuse requests before decoding them.
"""

import base64
import dataclasses
import http
import struct

import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2

ROW_KEY, COLUMNAR_KEY = "instances", "inputs"
# Deepest nesting of a tensor value (TF allows 254 dimensions; no served model takes
# more than 4). Bounding it keeps the recursive walks below far from Python's limit.
MAX_RANK = 32

# gRPC status names -> the HTTP statuses TF Serving's REST front end uses.
HTTP_STATUS = {
    "INVALID_ARGUMENT": http.HTTPStatus.BAD_REQUEST,
    "FAILED_PRECONDITION": http.HTTPStatus.BAD_REQUEST,
    "NOT_FOUND": http.HTTPStatus.NOT_FOUND,
    "RESOURCE_EXHAUSTED": http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "UNAVAILABLE": http.HTTPStatus.SERVICE_UNAVAILABLE,
    "INTERNAL": http.HTTPStatus.INTERNAL_SERVER_ERROR,
}


# And back, for clients: the code a REST status stands for.
CODE_OF_HTTP_STATUS = {
    400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 413: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE",
}


class ServingError(Exception):
    """A failed call: `code` is a gRPC status name (see HTTP_STATUS), `message` says
    which field was wrong and what was expected."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return int(HTTP_STATUS.get(self.code, http.HTTPStatus.INTERNAL_SERVER_ERROR))


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def proto_json(message) -> dict:
    """A response proto as TF Serving's REST API renders it: proto field names, and
    fields at their default values included (e.g. "error_code": "OK")."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


# --- JSON values ------------------------------------------------------------------


def from_json(value, dtype: tf.DType, field: str, max_elements: int | None = None) -> np.ndarray:
    """A JSON value (number, string, {"b64": ...} or nested lists of them) -> an array of
    `dtype`. Raises INVALID_ARGUMENT naming `field` for ragged or too deeply nested
    lists, values of the wrong kind (a fraction for an int input, a string for a number)
    or out of range, and RESOURCE_EXHAUSTED for more than `max_elements` values."""
    shape = _dense_shape(value, field, max_elements)
    if dtype == tf.string:
        return _strings(value, shape, field)
    try:
        array = np.asarray(value)
    except ValueError as error:  # NumPy refuses ragged nesting
        raise invalid(f"{field}: lists of unequal lengths ({error})") from error
    if array.shape != tuple(shape):  # e.g. [[1, 2], 3]: NumPy makes an object array
        raise invalid(f"{field}: lists of unequal lengths (the first elements give shape {shape})")
    if array.dtype == object or array.dtype.kind in "SU":
        raise invalid(
            f"{field}: expected {dtype.name} numbers, got strings, objects, null or "
            "integers beyond 64 bits"
        )
    if array.dtype.kind == "f" and (dtype.is_integer or dtype.is_bool):
        check_finite(array, field)
        if np.any(array != np.round(array)):
            raise invalid(f"{field}: expected {dtype.name} values, got fractional numbers")
    if array.dtype.kind == "b" and not dtype.is_bool:
        raise invalid(f"{field}: expected {dtype.name} numbers, got true/false")
    if dtype.is_integer and array.size:
        low, high = array.min(), array.max()
        if low < dtype.min or high > dtype.max:
            raise invalid(
                f"{field}: values in [{low}, {high}] do not fit {dtype.name} "
                f"[{dtype.min}, {dtype.max}]"
            )
    with np.errstate(over="ignore"):  # 1e39 as float32 becomes Infinity: check_finite's to refuse
        return array.astype(dtype.as_numpy_dtype)


def _dense_shape(value, field: str, max_elements: int | None) -> list:
    """The shape the first elements of nested lists give (as TF Serving reads it),
    checked for depth and size before anything is converted."""
    shape = []
    while isinstance(value, list):
        if len(shape) == MAX_RANK:
            raise invalid(f"{field}: lists nest deeper than {MAX_RANK} levels (a tensor's dimensions)")
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    if max_elements is not None and int(np.prod(shape, dtype=object)) > max_elements:
        raise ServingError(
            "RESOURCE_EXHAUSTED",
            f"{field}: shape {shape} holds more than the server's limit of {max_elements} "
            "elements per input (--max_elements)",
        )
    return shape


def check_finite(array: np.ndarray, field: str) -> None:
    """INVALID_ARGUMENT naming `field` when a float array holds NaN or +-Infinity
    (including numbers beyond the dtype's range, which become Infinity)."""
    if array.dtype.kind != "f":
        return
    bad = array.size - int(np.count_nonzero(np.isfinite(array)))
    if bad:
        raise invalid(
            f"{field}: {bad} of {array.size} values are not finite (NaN, Infinity, or beyond "
            f"{array.dtype.name}'s range); only finite numbers are accepted"
        )


def _strings(value, shape: list, field: str) -> np.ndarray:
    ragged = invalid(f"{field}: lists of unequal lengths (the first elements give shape {shape})")
    flat = []

    def walk(item, depth: int) -> None:  # depth <= len(shape) <= MAX_RANK
        if isinstance(item, list):
            if depth == len(shape) or len(item) != shape[depth]:
                raise ragged
            for element in item:
                walk(element, depth + 1)
        elif depth != len(shape):
            raise ragged
        else:
            flat.append(_string(item, field))

    walk(value, 0)
    # An object array keeps bytes as they are (no NUL stripping, any lengths).
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _string(item, field: str) -> bytes:
    if isinstance(item, dict):
        if set(item) != {"b64"} or not isinstance(item["b64"], str):
            raise invalid(f'{field}: binary values must be {{"b64": "<base64 string>"}}')
        try:
            return base64.b64decode(item["b64"], validate=True)
        except ValueError as error:  # binascii.Error, or non-ASCII characters
            raise invalid(f"{field}: b64 value is not valid base64 ({error})") from error
    if isinstance(item, str):
        try:
            return item.encode()
        except UnicodeEncodeError as error:  # a lone surrogate escape such as "\ud800"
            raise invalid(f"{field}: string is not valid Unicode ({error.reason})") from error
    raise invalid(f"{field}: expected strings or {{\"b64\": ...}}, got {type(item).__name__}")


def to_json(array: np.ndarray, name: str):
    """An output array -> its JSON value; strings of `*_bytes` outputs (and any that are
    not UTF-8) as {"b64": ...}."""
    array = np.asarray(array)
    if array.dtype != object and array.dtype.kind != "S":
        return array.tolist()

    def encode(item):
        if isinstance(item, list):
            return [encode(i) for i in item]
        if not name.endswith("_bytes"):
            try:
                return item.decode()
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(item).decode("ascii")}

    return encode(array.tolist())


# --- Predict bodies ---------------------------------------------------------------


def predict_request_body(inputs: dict, signature_name: str, row_format: bool) -> dict:
    """{input: array} -> a REST predict body; row format splits along axis 0."""
    body = {"signature_name": signature_name}
    encoded = {name: to_json(np.asarray(value), name) for name, value in inputs.items()}
    if not row_format:
        body[COLUMNAR_KEY] = encoded
        return body
    sizes = {name: len(value) if isinstance(value, list) else None for name, value in encoded.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(
            f"row format needs inputs batched alike along axis 0, got sizes {sizes}; use the "
            "columnar format for scalar inputs"
        )
    count = next(iter(sizes.values()))
    body[ROW_KEY] = [{name: value[i] for name, value in encoded.items()} for i in range(count)]
    return body


def parse_predict_request(body, input_dtypes: dict, max_elements: int | None = None) -> tuple[dict, bool]:
    """A decoded REST predict body -> ({input: array}, row_format).

    `input_dtypes` {name: tf.DType} are the signature's inputs. Raises INVALID_ARGUMENT
    naming the field when the body has neither or both of "instances" and "inputs",
    misses or adds inputs, or holds values that do not parse as their dtype, and
    RESOURCE_EXHAUSTED when an input has more than `max_elements` values.
    """
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    present = [key for key in (ROW_KEY, COLUMNAR_KEY) if key in body]
    if len(present) != 1:
        raise invalid('request body needs exactly one of "instances" (row format) or "inputs" (columnar)')
    unknown = set(body) - {"signature_name", ROW_KEY, COLUMNAR_KEY}
    if unknown:
        raise invalid(f"request body has unknown fields {sorted(unknown)}")
    row_format = present[0] == ROW_KEY
    values = body[present[0]]
    names = list(input_dtypes)
    if row_format:
        if not isinstance(values, list) or not values:
            raise invalid('"instances" must be a non-empty list')
        columns = {name: [] for name in names}
        for i, instance in enumerate(values):
            named = _named(instance, names, f"instances[{i}]")
            for name in names:
                columns[name].append(named[name])
        values = columns
    else:
        values = _named(values, names, "inputs")
    arrays = {}
    for name in names:
        arrays[name] = from_json(values[name], input_dtypes[name], f"{present[0]}.{name}", max_elements)
    return arrays, row_format


def _named(value, names: list, field: str) -> dict:
    """A value for one input, or an object of named inputs -> {input: value}."""
    if isinstance(value, dict) and set(value) != {"b64"}:
        missing, extra = set(names) - set(value), set(value) - set(names)
        if missing or extra:
            raise invalid(
                f"{field}: inputs {sorted(value)} do not match the signature's {sorted(names)}"
                + (f"; missing {sorted(missing)}" if missing else "")
                + (f"; unknown {sorted(extra)}" if extra else "")
            )
        return value
    if len(names) != 1:
        raise invalid(f"{field}: the signature has inputs {sorted(names)}; name them in an object")
    return {names[0]: value}


def predict_response_body(outputs: dict, row_format: bool) -> dict:
    """{output: array} -> the REST predict response of the request's format."""
    if not row_format:
        encoded = {name: to_json(value, name) for name, value in outputs.items()}
        return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
    sizes = {name: np.shape(value)[0] if np.ndim(value) else None for name, value in outputs.items()}
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise invalid(
            f"outputs {sizes} are not batched alike, which the row format needs; send the "
            'request with "inputs" (columnar) instead'
        )
    columns = {name: to_json(value, name) for name, value in outputs.items()}
    count = next(iter(sizes.values()))
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{name: column[i] for name, column in columns.items()} for i in range(count)]}


def parse_predict_response(body: dict) -> dict:
    """A REST predict response -> {output: array} (row format restacked along axis 0).

    Outputs come back as nested lists; numbers become float32 or int64 arrays, b64
    values bytes (object arrays). A single unnamed output is returned as "output".
    """
    if "outputs" in body:
        outputs = body["outputs"]
        named = outputs if isinstance(outputs, dict) and set(outputs) != {"b64"} else {"output": outputs}
    elif "predictions" in body:
        rows = body["predictions"]
        if rows and isinstance(rows[0], dict) and set(rows[0]) != {"b64"}:
            named = {name: [row[name] for row in rows] for name in rows[0]}
        else:
            named = {"output": rows}
    else:
        raise ValueError(f"predict response has neither outputs nor predictions: {sorted(body)}")
    return {name: _array(value) for name, value in named.items()}


def _array(value) -> np.ndarray:
    flat = value
    while isinstance(flat, list) and flat:
        flat = flat[0]
    if isinstance(flat, (dict, str)):
        return _strings(value, _dense_shape(value, "output", None), "output")
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


# --- gRPC tensors -----------------------------------------------------------------

# The repeated field holding each served dtype's values when tensor_content is empty
# (TensorProto's layout); other dtypes (complex, quantized, resources) are refused.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_HALF: "half_val", types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_INT8: "int_val", types_pb2.DT_INT16: "int_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val", types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val", types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


def to_tensor_proto(array) -> "tf.TensorProto":
    return tf.make_tensor_proto(array)


# What a string element takes beyond its bytes, as a NumPy object array's element (a
# bytes object's header and its slot) and again as a TF string tensor's (a tstring and
# its allocation).
STRING_ELEMENT_BYTES = 64


@dataclasses.dataclass(frozen=True)
class TensorSize:
    """An input tensor's size, known before it is decoded: what a server's memory
    budget counts.

    shape: its dimensions; dtype: its tf.DType.
    string_bytes: the total length of its strings, a value that fills the shape counted
      once for every element it fills (0 for numbers).
    pixels: the pixels of the encoded images among its strings, counted the same way
      (see `image_pixels`; a graph that takes images decodes them).
    value: the value of a one-element numeric tensor (e.g. a sample rate), else None.
    """

    shape: tuple
    dtype: tf.DType
    string_bytes: int = 0
    pixels: int = 0
    value: float | int | None = None

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=object))

    @property
    def decoded_bytes(self) -> int:
        """The bytes of the decoded array: elements x itemsize, or for strings their
        bytes and STRING_ELEMENT_BYTES each."""
        if self.dtype == tf.string:
            return self.string_bytes + self.elements * STRING_ELEMENT_BYTES
        return self.elements * self.dtype.size


def _strings_size(values, elements: int, field: str, max_image_pixels: int | None) -> tuple[int, int]:
    """(bytes, pixels) of the strings `values` filling `elements` elements (one value
    fills them all, otherwise there is one each), reading each image's header once.
    RESOURCE_EXHAUSTED naming the element for an image over `max_image_pixels`."""
    copies = elements if len(values) == 1 else 1
    total = pixels = 0
    for index, data in enumerate(values):
        total += len(data) * copies
        count = image_pixels(data, f"{field}[{index}]")
        if count is None:
            continue
        if max_image_pixels is not None and count > max_image_pixels:
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"{field}[{index}]: the encoded image has {count} pixels, over the server's "
                f"limit of {max_image_pixels} (--max_image_pixels)",
            )
        pixels += count * copies
    return total, pixels


def array_size(array: np.ndarray, field: str, max_image_pixels: int | None = None) -> TensorSize:
    """The TensorSize of a decoded input array (bytes strings as an object array);
    RESOURCE_EXHAUSTED naming the element for an encoded image over `max_image_pixels`."""
    if array.dtype == object or array.dtype.kind in "SU":
        string_bytes, pixels = _strings_size(list(array.flat), array.size, field, max_image_pixels)
        return TensorSize(array.shape, tf.string, string_bytes, pixels)
    value = array.item() if array.size == 1 else None
    return TensorSize(array.shape, tf.as_dtype(array.dtype), value=value)


def check_tensor_proto(
    proto, field: str, max_elements: int | None = None, max_image_pixels: int | None = None
) -> TensorSize:
    """Checks a TensorProto before it is decoded; returns its TensorSize.

    The dtype must be served, the shape known with at most MAX_RANK non-negative
    dimensions and at most `max_elements` elements (RESOURCE_EXHAUSTED otherwise), and
    the values must be those the shape declares: tensor_content of exactly elements x
    itemsize bytes, or exactly that many repeated values, or one value filling the shape
    (what tf.make_tensor_proto(value, shape=...) writes). Encoded images among string
    values must have at most `max_image_pixels`. Decoding takes no more than the size
    returned; a small message declaring a huge shape or a long string filling it is
    refused by its caller from that size.
    """
    if proto.dtype not in _VALUE_FIELDS:
        name = types_pb2.DataType.Name(proto.dtype) if proto.dtype in types_pb2.DataType.values() else proto.dtype
        raise invalid(f"{field}: dtype {name} is not served; expected one of the signature's dtypes")
    shape = proto.tensor_shape
    if shape.unknown_rank or len(shape.dim) > MAX_RANK:
        raise invalid(f"{field}: tensor_shape must list at most {MAX_RANK} dimensions")
    sizes = [dim.size for dim in shape.dim]
    if any(size < 0 for size in sizes):
        raise invalid(f"{field}: tensor_shape {sizes} has negative dimensions")
    elements = int(np.prod(sizes, dtype=object))
    dtype = tf.as_dtype(proto.dtype)
    itemsize = 8 if dtype == tf.string else np.dtype(dtype.as_numpy_dtype).itemsize
    if proto.tensor_content and dtype != tf.string:
        if len(proto.tensor_content) != elements * itemsize:
            raise invalid(
                f"{field}: tensor_content holds {len(proto.tensor_content)} bytes, but shape "
                f"{sizes} of {dtype.name} needs {elements * itemsize}"
            )
    else:
        values = len(getattr(proto, _VALUE_FIELDS[proto.dtype]))
        if values != elements and not (values == 1 and elements > 1):
            raise invalid(
                f"{field}: {_VALUE_FIELDS[proto.dtype]} holds {values} values, but shape "
                f"{sizes} needs {elements} (or one, to fill it)"
            )
        _check_value_range(proto, dtype, field)
    # Checked after the values: a single value filling a huge shape is well formed.
    if max_elements is not None and elements > max_elements:
        raise ServingError(
            "RESOURCE_EXHAUSTED",
            f"{field}: tensor_shape {sizes} holds {elements} elements, over the server's limit "
            f"of {max_elements} per input (--max_elements)",
        )
    if dtype == tf.string:
        string_bytes, pixels = _strings_size(proto.string_val, elements, field, max_image_pixels)
        return TensorSize(tuple(sizes), dtype, string_bytes, pixels)
    # One element decodes to next to nothing; its value is what e.g. a sample rate costs.
    value = from_tensor_proto(proto, field).item() if elements == 1 else None
    return TensorSize(tuple(sizes), dtype, value=value)


def _check_value_range(proto, dtype: tf.DType, field: str) -> None:
    """INVALID_ARGUMENT naming `field` when repeated values do not fit their dtype:
    int_val (int32) carries int8/int16/uint8/uint16 values, half_val (int32) the 16-bit
    patterns of half and bfloat16 values. Decoding them overflowed (INTERNAL); TF
    would truncate them silently; REST refuses the same numbers."""
    name = _VALUE_FIELDS[proto.dtype]
    values = getattr(proto, name)
    if name not in ("int_val", "half_val") or dtype.size >= 4 or not values:
        return
    low, high = (0, 0xFFFF) if name == "half_val" else (dtype.min, dtype.max)
    smallest, largest = min(values), max(values)
    if smallest < low or largest > high:
        what = f"16-bit patterns of {dtype.name} values" if name == "half_val" else dtype.name
        raise invalid(f"{field}: {name} values in [{smallest}, {largest}] do not fit {what} [{low}, {high}]")


def from_tensor_proto(proto, field: str) -> np.ndarray:
    """A TensorProto -> its array. A server calls `check_tensor_proto` first on every
    request tensor (decoding an unchecked one may allocate what its shape declares)."""
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid(f"{field}: not a valid TensorProto ({error})") from error


# --- Memory estimates -------------------------------------------------------------

# What CPython (64-bit) spends per parsed JSON item, rounded up: a number is a 24-32
# byte object, an 8-byte slot in its list and 8-16 bytes in the NumPy arrays made from
# it; a list is 56 bytes plus over-allocation; a dict (a {"b64": ...} or an instance)
# about 200. Measured: 38 MB to parse a 9 MB body of 600k audio samples and lists.
_PARSED_BYTES_PER_VALUE = 48
_PARSED_BYTES_PER_LIST = 96
_PARSED_BYTES_PER_OBJECT = 256
# An object key is a str (50 bytes and up) and its dict slot (about 50, as the table
# grows): 100k distinct short keys took 157 bytes a pair with their values.
_PARSED_BYTES_PER_KEY = 128
# Writing a JSON response: per number a Python float (24) and its list slot (8), up to
# 25 characters of text, and that text again as bytes (measured 76-109 bytes).
_RESPONSE_BYTES_PER_NUMBER = 128


def json_memory_estimate(body: bytes) -> int:
    """An upper estimate of the bytes json.loads and the conversion to arrays need for
    `body`, from counting its delimiters (no parsing): the text as a str (1 byte a
    character when ASCII, at most 4), base64 strings decoded, and per value, list and
    object its Python objects. A container of k values holds k - 1 commas, so the
    values number at most commas + containers + 1. Each object key is counted by its
    colon (a colon inside a string only raises the estimate)."""
    text = len(body) if body.isascii() else 4 * len(body)
    lists, objects = body.count(b"["), body.count(b"{")
    values = body.count(b",") + lists + objects + 1
    return (
        2 * text + values * _PARSED_BYTES_PER_VALUE + lists * _PARSED_BYTES_PER_LIST
        + objects * _PARSED_BYTES_PER_OBJECT + body.count(b":") * _PARSED_BYTES_PER_KEY
    )


# JSON text per value as predict_request_body writes it, with its ", ": float32 values
# print as the float64 repr of their value (up to 24 characters, typically 19-21).
_JSON_TEXT_BYTES = {"f": 24, "i": 13, "u": 13, "b": 7}


def json_body_size_estimate(inputs: dict) -> int:
    """About the bytes predict_request_body's JSON will take for {input: array},
    computed from sizes alone (no encoding)."""
    total = 0
    for value in inputs.values():
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "SU":  # b64 text and its braces
            total += sum(4 * len(item) // 3 + 16 for item in array.flat)
        else:
            total += array.size * _JSON_TEXT_BYTES.get(array.dtype.kind, 24)
    return total


def json_response_memory_estimate(outputs: dict) -> int:
    """An estimate of the bytes writing {output: array} as a JSON response needs."""
    total = 0
    for value in outputs.values():
        array = np.asarray(value)
        if array.dtype == object:  # bytes: base64 text (4/3), twice, and per string objects
            total += sum(3 * len(item) + _PARSED_BYTES_PER_OBJECT for item in array.flat)
        else:
            total += array.size * _RESPONSE_BYTES_PER_NUMBER
    return total


# --- Encoded images ---------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are
# other segments that share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Real files have a few dozen segments or GIF blocks before what is read here; bounding
# the walk keeps a crafted file from costing more than a few milliseconds.
_MAX_HEADER_STEPS = 10_000
# BMP info header sizes (BITMAPCOREHEADER ... BITMAPV5HEADER): "BM" alone is too common.
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})


def image_pixels(data: bytes, field: str) -> int | None:
    """The pixels decoding `data` allocates if it is a PNG, JPEG, GIF (every frame), BMP
    or WebP, read from its header; None for other data. A JPEG, GIF or WebP whose header
    cannot be read is INVALID_ARGUMENT naming `field` (the decoder would refuse it too)."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise invalid(f"{field}: a PNG without its IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return width * height
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_pixels(data, field)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_pixels(data, field)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_pixels(data, field)
    if data.startswith(b"BM") and len(data) >= 26 and struct.unpack("<I", data[14:18])[0] in _BMP_HEADER_SIZES:
        if struct.unpack("<I", data[14:18])[0] == 12:  # BITMAPCOREHEADER: 16-bit sizes
            width, height = struct.unpack("<HH", data[18:22])
        else:
            width, height = struct.unpack("<ii", data[18:26])  # height < 0: top-down rows
        return abs(width) * abs(height)
    return None


def _jpeg_pixels(data: bytes, field: str) -> int:
    position = 2
    for _ in range(_MAX_HEADER_STEPS):
        if position + 4 > len(data) or data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker in _JPEG_SOF and position + 9 <= len(data):
            height, width = struct.unpack(">HH", data[position + 5:position + 9])
            return width * height
        elif marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            position += 2
        elif marker in (0xD9, 0xDA):  # end of image or start of scan before any frame
            break
        else:
            position += 2 + struct.unpack(">H", data[position + 2:position + 4])[0]
    raise invalid(f"{field}: a JPEG whose frame header (SOF) could not be read")


def _gif_pixels(data: bytes, field: str) -> int:
    if len(data) < 13:
        raise invalid(f"{field}: a GIF without its screen descriptor")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    # Decoding expands every frame to the whole screen. Each frame takes at least 12
    # bytes, which bounds their count when the walk stops early.
    frames = 0
    position = 13 + _gif_color_table(flags)
    steps = 0
    while position < len(data) and data[position] != 0x3B and steps < _MAX_HEADER_STEPS:
        steps += 1
        block = data[position]
        if block == 0x21:  # extension: label, then sub-blocks
            position += 2
        elif block == 0x2C and position + 10 <= len(data):  # image descriptor
            frames += 1
            position += 10 + _gif_color_table(data[position + 9]) + 1  # + LZW code size
        else:
            break
        while position < len(data) and data[position] and steps < _MAX_HEADER_STEPS:
            position += data[position] + 1
            steps += 1
        position += 1
    if steps >= _MAX_HEADER_STEPS:
        frames = max(frames, len(data) // 12)
    return width * height * max(frames, 1)


def _gif_color_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _webp_pixels(data: bytes, field: str) -> int:
    """The size the first chunk after the RIFF header declares (libwebp's layout): VP8X
    (extended: 24-bit canvas width - 1 and height - 1), VP8L (lossless: a 0x2F byte,
    then 14-bit width - 1 and height - 1), or VP8 (lossy: a key frame's start code,
    then 14-bit width and height; the top 2 bits are an upscaling hint decoders ignore).
    An animation's frames share the canvas, and the served graphs refuse animations."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return (int.from_bytes(data[24:27], "little") + 1) * (int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return ((bits & 0x3FFF) + 1) * ((bits >> 14 & 0x3FFF) + 1)
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return (width & 0x3FFF) * (height & 0x3FFF)
    raise invalid(f"{field}: a WebP whose VP8, VP8L or VP8X header could not be read")
