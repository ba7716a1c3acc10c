"""A development stand-in for `tensorflow_model_server`: the same export folder, the
same REST and gRPC calls, in one Python process.

TF Serving itself ships as a Docker image or from its own apt repository, not from
PyPI; this server lets the client, the tests and local experiments run without it.
Production deployments should use TF Serving (README, "Serving").

REST (ThreadingHTTPServer):
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            model status
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   signature defs
  POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    row or columnar body
gRPC (grpc thread pool): PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus.

Errors: unknown model, version, label or signature -> 404 / NOT_FOUND; malformed JSON,
missing or extra inputs, wrong dtype or shape, undecodable images or audio -> 400 /
INVALID_ARGUMENT; a body over max_request_bytes -> 413 / RESOURCE_EXHAUSTED. The
message names the field; the server keeps serving.
"""

import concurrent.futures
import http.server
import json
import re
import threading
import urllib.parse

import grpc
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import wire
from serving.repository import ModelRepository
from serving.wire import ServingError, invalid

DEFAULT_MAX_REQUEST_BYTES = 1 << 30
# Bodies up to this many times the limit are read and dropped before the error.
_DRAIN_FACTOR = 8
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>/metadata|:[a-z]+)?$"
)


# --- REST -------------------------------------------------------------------------


class _RestHandler(http.server.BaseHTTPRequestHandler):
    repository: ModelRepository
    max_request_bytes: int
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # one line per request would drown the server's own output

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer(lambda route: self._get(route))

    def do_POST(self):  # noqa: N802
        self._answer(lambda route: self._post(route))

    def _answer(self, handle) -> None:
        try:
            route = self._route()
            status, body = 200, handle(route)
        except ServingError as error:
            status, body = error.http_status, {"error": error.message}
        except Exception as error:  # the server keeps serving whatever one request does
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> dict:
        path = urllib.parse.urlsplit(self.path).path
        match = _PATH.match(path)
        if not match:
            self._discard_body()
            raise ServingError(
                "NOT_FOUND", f"no such endpoint {path}; expected /v1/models/<name>[...][:predict|/metadata]"
            )
        route = match.groupdict()
        if route["version"] is not None and not route["version"].isdigit():
            self._discard_body()
            raise invalid(f"version {route['version']!r} in the URL must be a whole number")
        return route

    def _discard_body(self) -> None:
        """Reads and drops the body: unread, it would be parsed as the next request,
        and a client still sending it would see a broken pipe, not our error. Bodies
        far over the limit are not worth reading; the connection is closed instead."""
        length = self.headers.get("Content-Length") or "0"
        length = int(length) if length.isdigit() else 0
        if length > _DRAIN_FACTOR * self.max_request_bytes:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _get(self, route: dict) -> dict:
        verb = route["verb"]
        if verb not in (None, "/metadata"):
            raise ServingError("NOT_FOUND", f"{verb} needs POST")
        args = (route["name"], route["version"], route["label"] or "")
        if verb == "/metadata":
            return wire.proto_json(self.repository.metadata(*args))
        return wire.proto_json(self.repository.status(*args))

    def _post(self, route: dict) -> dict:
        if route["verb"] != ":predict":
            self._discard_body()
            raise ServingError(
                "NOT_FOUND", f"POST {self.path}: only :predict is served (classify/regress are not)"
            )
        body = self._json_body()
        signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
        if not isinstance(signature_name, str):
            raise invalid("signature_name must be a string")
        servable = self.repository.resolve(route["name"], route["version"], route["label"] or "")
        specs = servable.input_specs(signature_name)
        inputs, row_format = wire.parse_predict_request(
            body, {name: spec.dtype for name, spec in specs.items()}
        )
        outputs = servable.predict(signature_name, inputs)
        return wire.predict_response_body(outputs, row_format)

    def _json_body(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise invalid("a predict request needs a Content-Length header")
        if int(length) > self.max_request_bytes:
            self._discard_body()
            raise ServingError(
                "RESOURCE_EXHAUSTED",
                f"request body of {int(length)} bytes exceeds the server's limit of "
                f"{self.max_request_bytes} bytes (--max_request_mb)",
            )
        data = self.rfile.read(int(length))
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise invalid(f"request body is not valid JSON: {error}") from error


# --- gRPC -------------------------------------------------------------------------


def _abort_on_error(method):
    """Turns ServingErrors into the call's gRPC status, keeping the server up."""

    def wrapped(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        except Exception as error:  # noqa: BLE001 - any failure is this call's only
            context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

    return wrapped


def _spec_args(model_spec) -> tuple:
    which = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if which == "version" else None
    label = model_spec.version_label if which == "version_label" else ""
    return model_spec.name, version, label


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    @_abort_on_error
    def Predict(self, request, context):  # noqa: N802 - gRPC's naming
        servable = self.repository.resolve(*_spec_args(request.model_spec))
        inputs = {
            name: wire.from_tensor_proto(proto, f"inputs.{name}")
            for name, proto in request.inputs.items()
        }
        outputs = servable.predict(
            request.model_spec.signature_name, inputs, list(request.output_filter)
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(wire.to_tensor_proto(value))
        return response

    @_abort_on_error
    def GetModelMetadata(self, request, context):  # noqa: N802
        fields = set(request.metadata_field)
        if fields - {"signature_def"}:
            raise invalid(f"metadata_field {sorted(fields)}: only 'signature_def' is served")
        return self.repository.metadata(*_spec_args(request.model_spec))


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    @_abort_on_error
    def GetModelStatus(self, request, context):  # noqa: N802
        return self.repository.status(*_spec_args(request.model_spec))


# --- Both -------------------------------------------------------------------------


class DevServer:
    """REST and gRPC front ends over one ModelRepository.

    Ports 0 pick free ports (`rest_port` / `grpc_port` hold the real ones after
    `start`). `threads` bounds concurrent gRPC calls; REST uses one thread per
    connection.
    """

    def __init__(
        self,
        repository: ModelRepository,
        host: str = "localhost",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        threads: int = 16,
    ):
        self.repository = repository
        handler = type("Handler", (_RestHandler,), {
            "repository": repository, "max_request_bytes": max_request_bytes,
        })
        try:
            self._http = http.server.ThreadingHTTPServer((host, rest_port), handler)
        except OSError as error:
            raise OSError(f"cannot listen for REST on {host}:{rest_port}: {error}") from error
        self._http.daemon_threads = True
        self.rest_port = self._http.server_address[1]
        options = [
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ]
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=threads), options=options
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(repository), self._grpc
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(repository), self._grpc)
        try:
            self.grpc_port = self._grpc.add_insecure_port(f"{host}:{grpc_port}")
        except RuntimeError:  # grpcio raises instead of returning 0 on bind failure
            self.grpc_port = 0
        if self.grpc_port == 0:
            self._http.server_close()
            raise OSError(f"cannot listen for gRPC on {host}:{grpc_port} (port in use?)")
        self.host = host
        self._thread = None

    def start(self) -> "DevServer":
        self._grpc.start()
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def wait(self) -> None:
        """Blocks until `stop` (or Ctrl-C in the caller)."""
        self._grpc.wait_for_termination()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=1).wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
