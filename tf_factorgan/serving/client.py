"""Clients of the TF Serving API (TF Serving or `serving.dev_server`) over REST and gRPC.

Both clients have the same methods and return the same Python values:
  predict(model, inputs, signature_name, version, label) -> {output: np.ndarray}
  status(model, version, label) -> GetModelStatusResponse as a dict (REST's JSON)
  metadata(model, version, label) -> GetModelMetadataResponse as a dict
and raise `ServingError` (gRPC status name, message) when the server refuses a call.
REST outputs are cast to the dtypes of the signature (JSON only has numbers), so a
REST and a gRPC call give identical arrays. JSON costs the client several times its
size to build (5.5 GB for a 10-minute song), so RestClient refuses bodies estimated
over `max_body_bytes` before building them; GrpcClient sends raw tensors.

`segment_image` and `separate_audio` are the two tasks of the exported models (see
export/savedmodel.py for their signatures).
"""

import http.client
import json
import threading

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tf_factorgan.serving import wire
from tf_factorgan.serving.wire import ServingError
from tf_factorgan.audio.windows import SOURCES

DEFAULT_TIMEOUT_SECONDS = 600.0
# Big enough for a whole song as float32 (a 10-minute stereo 44.1 kHz song is 212 MB).
MAX_MESSAGE_BYTES = 1 << 30
# Within the development server's default memory budget (2 GiB) for the served models'
# heaviest case: separation returns two outputs the size of its input, and writing
# them as JSON costs 2 x 128 bytes an input sample against 20-24 bytes of request
# text, so 128 MiB of audio JSON needs about 1.4 GiB (256 MiB needed 2.7, refused
# with 413 only after predicting). Building the body costs the client about 0.5 GiB.
DEFAULT_MAX_BODY_BYTES = 128 << 20


def _version_path(model: str, version=None, label: str = "") -> str:
    path = f"/v1/models/{model}"
    if version:
        path += f"/versions/{int(version)}"
    elif label:
        path += f"/labels/{label}"
    return path


class RestClient:
    """REST client; thread-safe (one keep-alive connection per thread)."""

    protocol = "rest"

    def __init__(
        self, address: str = "localhost:8501", timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ):
        self.address = address
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._local = threading.local()
        self._output_dtypes: dict = {}

    def _request(self, method: str, path: str, body=None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in range(2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(self.address, timeout=self.timeout)
                self._local.connection = connection
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException) as error:
                # A server may close an idle keep-alive connection: retry once anew.
                connection.close()
                self._local.connection = None
                if attempt:
                    raise ServingError("UNAVAILABLE", f"REST server {self.address}: {error}") from error
            except OSError as error:
                self._local.connection = None
                raise ServingError("UNAVAILABLE", f"REST server {self.address}: {error}") from error
        try:
            decoded = json.loads(payload)
        except json.JSONDecodeError as error:
            raise ServingError(
                "INTERNAL", f"{method} {path}: HTTP {response.status}, not JSON: {payload[:200]!r}"
            ) from error
        if response.status != 200:
            code = wire.CODE_OF_HTTP_STATUS.get(response.status, "INTERNAL")
            message = decoded.get("error") if isinstance(decoded, dict) else None
            raise ServingError(code, message or f"HTTP {response.status}")
        return decoded

    def status(self, model: str, version=None, label: str = "") -> dict:
        return self._request("GET", _version_path(model, version, label))

    def metadata(self, model: str, version=None, label: str = "") -> dict:
        return self._request("GET", _version_path(model, version, label) + "/metadata")

    def predict(
        self, model: str, inputs: dict, signature_name: str = "serving_default",
        version=None, label: str = "", row_format: bool = False,
    ) -> dict:
        """row_format sends "instances" (every input batched along axis 0), otherwise
        "inputs" (columnar, any shapes). RESOURCE_EXHAUSTED, before anything is built,
        when the body would exceed max_body_bytes."""
        size = wire.json_body_size_estimate(inputs)
        if size > self.max_body_bytes:
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"inputs {sorted(inputs)} would make a JSON body of about {size >> 20} MiB, over "
                f"this client's max_body_bytes of {self.max_body_bytes >> 20} MiB; send tensors "
                "this large with GrpcClient (serving.cli --protocol=grpc)",
            )
        body = wire.predict_request_body(inputs, signature_name, row_format)
        response = self._request("POST", _version_path(model, version, label) + ":predict", body)
        outputs = wire.parse_predict_response(response)
        dtypes = self._signature_outputs(model, version, label, signature_name)
        if set(outputs) == {"output"} and len(dtypes) == 1:  # a lone output comes unnamed
            outputs = {next(iter(dtypes)): outputs["output"]}
        return {
            name: value if dtypes[name] == tf.string else value.astype(dtypes[name].as_numpy_dtype)
            for name, value in outputs.items()
        }

    def _signature_outputs(self, model, version, label, signature_name) -> dict:
        """{output name: tf.DType} from the model's metadata, fetched once per signature."""
        key = (model, version, label, signature_name)
        if key not in self._output_dtypes:
            signature_defs = self.metadata(model, version, label)["metadata"]["signature_def"]["signature_def"]
            outputs = signature_defs[signature_name]["outputs"]
            self._output_dtypes[key] = {
                name: tf.as_dtype(types_pb2.DataType.Value(info["dtype"])) for name, info in outputs.items()
            }
        return self._output_dtypes[key]


class GrpcClient:
    """gRPC client through tensorflow-serving-api's stubs; thread-safe."""

    protocol = "grpc"

    def __init__(self, address: str = "localhost:8500", timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self.address = address
        self.timeout = timeout
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = grpc.insecure_channel(address, options=options)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingError(error.code().name, error.details() or str(error)) from error

    @staticmethod
    def _spec(model_spec, model: str, version=None, label: str = "") -> None:
        model_spec.name = model
        if version:
            model_spec.version.value = int(version)
        elif label:
            model_spec.version_label = label

    def status(self, model: str, version=None, label: str = "") -> dict:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        return wire.proto_json(self._call(self._models.GetModelStatus, request))

    def metadata(self, model: str, version=None, label: str = "") -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        return wire.proto_json(self._call(self._prediction.GetModelMetadata, request))

    def predict(
        self, model: str, inputs: dict, signature_name: str = "serving_default",
        version=None, label: str = "", row_format: bool = False,
    ) -> dict:
        """row_format is REST's; gRPC always sends whole tensors."""
        del row_format
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label)
        request.model_spec.signature_name = signature_name
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(wire.to_tensor_proto(value))
        response = self._call(self._prediction.Predict, request)
        return {name: wire.from_tensor_proto(proto, name) for name, proto in response.outputs.items()}


def connect(protocol: str, address: str = "", timeout: float = DEFAULT_TIMEOUT_SECONDS):
    """A RestClient or GrpcClient; address defaults to TF Serving's ports (REST 8501,
    gRPC 8500) on localhost."""
    if protocol == "rest":
        return RestClient(address or "localhost:8501", timeout)
    if protocol == "grpc":
        return GrpcClient(address or "localhost:8500", timeout)
    raise ValueError(f"protocol must be 'rest' or 'grpc', got {protocol!r}")


# --- The two tasks ----------------------------------------------------------------


def segment_image(client, model: str, encoded: bytes, version=None) -> bytes:
    """An encoded JPEG/PNG photo -> the PNG label map (predict_bytes), same size.
    REST sends it in row format as {"b64": ...}."""
    outputs = client.predict(
        model, {"images": np.array([encoded], dtype=object)}, "predict_bytes", version,
        row_format=True,
    )
    return bytes(outputs["label_png_bytes"][0])


def separate_audio(client, model: str, audio: np.ndarray, rate: int, version=None) -> dict:
    """float32 [samples, channels] at `rate` -> {"vocals", "accompaniment"} shaped like
    it (serving_default, columnar: sample_rate is a scalar)."""
    audio = np.asarray(audio, dtype=np.float32)
    outputs = client.predict(
        model,
        {"waveform": audio[None], "sample_rate": np.array(rate, dtype=np.int32)},
        "serving_default",
        version,
    )
    return {name: outputs[name][0] for name in SOURCES}

