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

gRPC carries tensors as TensorProtos (`to_tensor_proto` / `from_tensor_proto`).
"""

import base64
import binascii
import http

import numpy as np
import tensorflow as tf
from google.protobuf import json_format

ROW_KEY, COLUMNAR_KEY = "instances", "inputs"

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


def from_json(value, dtype: tf.DType, field: str) -> np.ndarray:
    """A JSON value (number, string, {"b64": ...} or nested lists of them) -> an array of
    `dtype`. Raises INVALID_ARGUMENT naming `field` for ragged lists, values of the
    wrong kind (a fraction for an int input, a string for a number) or out of range."""
    if dtype == tf.string:
        return _strings(value, field)
    try:
        array = np.asarray(value)
    except ValueError as error:  # NumPy refuses ragged nesting
        raise invalid(f"{field}: lists of unequal lengths ({error})") from error
    if array.dtype == object or array.dtype.kind in "SU":
        raise invalid(f"{field}: expected {dtype.name} numbers, got strings or objects")
    if array.dtype.kind == "f" and (dtype.is_integer or dtype.is_bool):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
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
    return array.astype(dtype.as_numpy_dtype)


def _strings(value, field: str) -> np.ndarray:
    def decode(item):
        if isinstance(item, list):
            return [decode(i) for i in item]
        if isinstance(item, dict):
            if set(item) != {"b64"} or not isinstance(item["b64"], str):
                raise invalid(f'{field}: binary values must be {{"b64": "<base64 string>"}}')
            try:
                return base64.b64decode(item["b64"], validate=True)
            except binascii.Error as error:
                raise invalid(f"{field}: b64 value is not valid base64 ({error})") from error
        if isinstance(item, str):
            return item.encode()
        raise invalid(f"{field}: expected strings or {{\"b64\": ...}}, got {type(item).__name__}")

    decoded = decode(value)
    try:  # an object array keeps bytes as they are (no NUL stripping, any lengths)
        array = np.empty(np.shape(decoded), dtype=object)
        array[...] = decoded
    except ValueError as error:  # NumPy refuses ragged nesting
        raise invalid(f"{field}: lists of unequal lengths ({error})") from error
    return array


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


def parse_predict_request(body, input_dtypes: dict) -> tuple[dict, bool]:
    """A decoded REST predict body -> ({input: array}, row_format).

    `input_dtypes` {name: tf.DType} are the signature's inputs. Raises INVALID_ARGUMENT
    naming the field when the body has neither or both of "instances" and "inputs",
    misses or adds inputs, or holds values that do not parse as their dtype.
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
        arrays[name] = from_json(values[name], input_dtypes[name], f"{present[0]}.{name}")
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
        return _strings(value, "output")
    array = np.asarray(value)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


# --- gRPC tensors -----------------------------------------------------------------


def to_tensor_proto(array) -> "tf.TensorProto":
    return tf.make_tensor_proto(array)


def from_tensor_proto(proto, field: str) -> np.ndarray:
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid(f"{field}: not a valid TensorProto ({error})") from error
