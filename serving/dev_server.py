"""A development stand-in for `tensorflow_model_server`: the same export folder, the
same REST and gRPC calls, in one Python process.

TF Serving itself ships as a Docker image or from its own apt repository, not from
PyPI; this server lets the client, the tests and local experiments run without it.
Production deployments should use TF Serving (README, "Serving").

REST (a fixed pool of `rest_threads` workers):
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            model status
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   signature defs
  POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    row or columnar body
gRPC (grpc thread pool of `threads`): PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus. A Predict whose caller cancels it or goes away stops its
graph (CANCELLED) instead of computing to the end.

Errors: unknown model, version, label or signature -> 404 / NOT_FOUND; malformed JSON,
missing or extra inputs, wrong dtype or shape, undecodable images or audio, non-finite
numbers, a TensorProto whose values do not match its declared shape, an undecodable
gRPC message, a body shorter than its Content-Length -> 400 / INVALID_ARGUMENT; any
other HTTP method -> 400 "Malformed request" (as TF Serving); a request over one of
the `Limits` -> 413 / RESOURCE_EXHAUSTED. Errors are {"error": message} over REST, the
message names the field, each refusal is one log line, and the server keeps serving.

Every bound is checked before the large allocation it prevents: the body size from
Content-Length (before a 100 Continue), the parsing memory from the body's delimiters,
a gRPC tensor's size from its declared shape and values (a string filling a shape
counts once per element), an image's pixels from its header, and what the graph will
allocate from the inputs (`Servable.memory_estimate`: resampling, image decoding) before
it runs. A
request's line and headers, and then its body, must each arrive within
`read_timeout_s`, so a client that stalls or trickles holds a worker for at most that;
a keep-alive connection gives its worker up when other connections wait for one.
Transfer-Encoding (chunked bodies) is refused with 400: bodies need a Content-Length.

Non-finite numbers: TF Serving accepts NaN/Infinity inputs and writes non-finite
outputs as bare NaN/Infinity literals. This server refuses non-finite inputs over
both protocols (no exported model means anything by them) and writes outputs as TF
Serving does.
"""

import concurrent.futures
import dataclasses
import http.server
import io
import json
import logging
import math
import re
import select
import socket
import threading
import time
import urllib.parse

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import wire
from serving.repository import Cancellation, ModelRepository
from serving.wire import ServingError, invalid

_LOG = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 1 << 30
DEFAULT_MAX_REQUEST_MEMORY_BYTES = 2 << 30
# A 10-minute stereo 44.1 kHz song has 52.9 M samples.
DEFAULT_MAX_ELEMENTS = 1 << 26
# Just over 8K UHD (7680 x 4320); decoding 100 M pixels took 4.9 s and 300 MB.
DEFAULT_MAX_IMAGE_PIXELS = 1 << 25
DEFAULT_READ_TIMEOUT_S = 30.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
# Bodies up to this many times the limit are read and dropped before the error.
_DRAIN_FACTOR = 8
_CHUNK_BYTES = 1 << 20
# An idle keep-alive connection gives its worker up this soon when other connections
# are waiting for one; otherwise after idle_timeout_s.
_CONTENDED_IDLE_S = 0.25
_POLL_S = 0.05
# Connections waiting for a worker, per worker, before new ones are turned away.
_QUEUED_PER_WORKER = 16
# gRPC calls in flight (running or queued for a thread), per thread, before grpc
# answers RESOURCE_EXHAUSTED: a flood of calls must not queue without bound.
_RPCS_PER_THREAD = 4
# How long a connection closed with a body left unread is still read (and dropped)
# after the error: closing a socket with unread bytes sends a TCP reset, which can
# destroy the response before the client reads it.
_LINGER_S = 1.0
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<verb>/metadata|:[a-z]+)?$"
)


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    max_request_bytes: a REST body or gRPC message.
    max_request_memory_bytes: the estimated memory parsing a REST body, decoding the
      inputs, running the graph on them and encoding a JSON response each need (REST
      JSON costs 4-40 times its size in Python).
    max_elements: elements of one input tensor.
    max_image_pixels: width x height (x frames) of an encoded image in a string input.
    """

    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_request_memory_bytes: int = DEFAULT_MAX_REQUEST_MEMORY_BYTES
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


def _exhausted(message: str) -> ServingError:
    return ServingError("RESOURCE_EXHAUSTED", message)


def _check_memory(servable, signature_name: str, sizes: dict, prefix: str, limits: Limits) -> None:
    """RESOURCE_EXHAUSTED unless decoding inputs of `sizes` {name: wire.TensorSize} and
    running the signature's graph on them fit max_request_memory_bytes: decided before
    either allocates (Servable.memory_estimate)."""
    inputs, graph = servable.memory_estimate(signature_name, sizes, prefix)
    if inputs + graph > limits.max_request_memory_bytes:
        raise _exhausted(
            f"{prefix} {sorted(sizes)} would need about {_mb(inputs + graph)} ({_mb(inputs)} "
            f"decoded, {_mb(graph)} for the model's graph and outputs), over the server's per-request "
            f"budget of {_mb(limits.max_request_memory_bytes)} (--max_request_memory_mb)"
        )


def _check_finite(inputs: dict, prefix: str) -> None:
    for name, array in inputs.items():
        wire.check_finite(array, f"{prefix}.{name}")


def _printable(text: str, limit: int = 300) -> str:
    """Log-safe: ASCII (a lone surrogate must not break the log handler), one line."""
    return text[:limit].encode("ascii", "backslashreplace").decode("ascii").replace("\n", " ")


def _mb(count: int) -> str:
    return f"{count / (1 << 20):.0f} MiB"


def _body_too_large(length: str, limits: Limits) -> ServingError:
    """`length`: the Content-Length header as sent."""
    return _exhausted(
        f"request body of {_shortened(length)} bytes exceeds the server's limit of "
        f"{limits.max_request_bytes} bytes (--max_request_mb)"
    )


# Digits in the largest number a header or URL may carry: int64, as TF Serving reads
# versions. int() refuses more than 4300 digits, which was a 500 or a dropped connection.
_INT64_MAX = (1 << 63) - 1
_INT64_DIGITS = len(str(_INT64_MAX))


def _whole_number(text: str) -> int | float | None:
    """ASCII digits -> their value; math.inf for more digits than int64 holds (over
    every bound, and never converted); None for anything else."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _INT64_DIGITS else math.inf


def _shortened(number: str) -> str:
    """A number for a message: a long one by its first digits and its length."""
    return number if len(number) <= 24 else f"{number[:12]}... ({len(number)} digits)"


# --- REST -------------------------------------------------------------------------


class _DeadlineReader(io.RawIOBase):
    """A connection's reads, each allowed only what is left until `deadline` (a
    time.monotonic(); None: the socket's own timeout). A per-read timeout alone lets a
    client trickle a byte just inside it, forever; this ends the request by its
    deadline however the bytes arrive."""

    def __init__(self, sock: socket.socket):
        super().__init__()
        self._sock = sock
        self.deadline = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError:  # a non-blocking peek with nothing there (as SocketIO)
            return None


def _linger(sock: socket.socket) -> None:
    """Ends our side, then reads and drops what the client still sends until it
    closes its side or _LINGER_S pass, so that the response is not reset away."""
    deadline = time.monotonic() + _LINGER_S
    try:
        sock.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(_CHUNK_BYTES):
                return
    except OSError:  # timed out, reset or already shut: the close goes ahead
        pass


class _RestHandler(http.server.BaseHTTPRequestHandler):
    repository: ModelRepository
    limits: Limits
    read_timeout_s: float
    idle_timeout_s: float
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # refusals are logged by _reply; a line per request would drown the rest

    def log_error(self, format, *args):  # noqa: A002
        # Left to http.server only for a request line or headers that timed out.
        _LOG.warning("REST %s: %s", self.client_address[0], _printable(format % args))

    def setup(self):
        super().setup()
        self.rfile.close()  # replaced by one whose reads keep to the request's deadline
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._linger = False

    def handle(self):
        try:
            while self._next_request_arrives():
                self.close_connection = True  # parse_request keeps HTTP/1.1 connections
                self.handle_one_request()
                if self.close_connection:
                    break
            if self._linger:
                _linger(self.connection)
        except ConnectionError as error:  # the client went away: its fault, no traceback
            _LOG.info("REST %s: connection dropped (%s)", self.client_address[0], type(error).__name__)

    def _next_request_arrives(self) -> bool:
        """Waits for the next request's first bytes, then gives the request line and
        headers read_timeout_s in all. An idle connection is closed after
        idle_timeout_s, or after _CONTENDED_IDLE_S when a waiting connection is left
        for this worker to take, so that idle keep-alive connections cannot hold the
        whole pool."""
        self._reader.deadline = None  # _buffered's peek must not block
        started = time.monotonic()
        while not self.server.stopping:
            if self._buffered() or _readable(self.connection, _POLL_S):
                self._reader.deadline = time.monotonic() + self.read_timeout_s
                return True
            idle = time.monotonic() - started
            if idle >= self.idle_timeout_s or (idle >= _CONTENDED_IDLE_S and self.server.claim_for_waiting()):
                return False
        return False

    def _buffered(self) -> bool:
        """Whether a pipelined request already sits in rfile's buffer, where polling the
        socket cannot see it. Non-blocking: peek returns b"" instead of waiting."""
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        finally:
            self.connection.setblocking(True)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer(self._get)

    def do_POST(self):  # noqa: N802
        self._answer(self._post)

    def __getattr__(self, name):
        # Any other method (PUT, DELETE, HEAD, OPTIONS, TRACE, any token) gets TF
        # Serving's answer, not http.server's HTML 501 page.
        if name.startswith("do_"):
            return lambda: self._answer(self._other_method)
        raise AttributeError(name)

    def _other_method(self):
        # Before routing: an unknown method is malformed whatever its path.
        raise invalid(
            f"Malformed request: {self.command} {self._url_path()}; the REST API takes GET "
            "(status, metadata) and POST (:predict)"
        )

    def handle_expect_100(self):
        """Refuses a body over max_request_bytes before the client sends it, instead
        of inviting it with 100 Continue (a bad Content-Length is refused later)."""
        length = self.headers.get("Content-Length", "")
        if (_whole_number(length) or 0) > self.limits.max_request_bytes:
            self._close_unread()  # the client may send the body anyway after a while
            self._reply(413, {"error": _body_too_large(length, self.limits).message})
            return False
        return super().handle_expect_100()

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line, headers too long or too many)
        as JSON like every other error, not its HTML page."""
        self.close_connection = True
        # parse_request leaves the default "HTTP/0.9" when the request line is bad, which
        # would send the body without a status line; HTTP/0.9 clients no longer exist.
        self.request_version = self.protocol_version
        reason = self.responses.get(code, ("error",))[0]
        self._reply(code, {"error": f"{reason}: {message}" if message else reason})

    def _answer(self, handle) -> None:
        self._unread = 0
        try:
            self._unread = self._content_length()
            status, body = 200, handle()
        except ServingError as error:
            status, body = error.http_status, {"error": error.message}
        except ConnectionError:  # the client went away while sending: handle() logs it
            raise
        except Exception as error:  # a bug, not the request: keep serving, keep the trace
            _LOG.exception("REST %s %s failed", self.command, _printable(self.path))
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {error}"}
        self._drain()
        if not self.close_connection and self.server.claim_for_waiting():
            self.close_connection = True  # a busy keep-alive client must not starve the queue
        self._reply(status, body)

    def _reply(self, status: int, body: dict) -> None:
        # Writes get the whole timeout; a read may have left the socket with the last
        # fraction of its deadline.
        self.connection.settimeout(self.read_timeout_s)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 400 and body["error"].startswith("Malformed request"):
            self.send_header("Allow", "GET, POST")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if status != 200:
            _LOG.warning(
                "REST %s %s %s -> %d: %s", self.client_address[0], self.command or "-",
                _printable(getattr(self, "path", ""), 120), status, _printable(body["error"]),
            )

    def _close_unread(self) -> None:
        """Where this body ends, and the next request starts, is unknown, or the body
        is not worth reading: close after the error, lingering for what still comes."""
        self.close_connection = True
        self._linger = True

    def _content_length(self) -> int:
        encoding = self.headers.get_all("Transfer-Encoding")
        if encoding:
            self._close_unread()
            raise invalid(
                f"Transfer-Encoding {_printable(', '.join(encoding), 60)!r} is not supported; "
                "send the body with a Content-Length header"
            )
        values = self.headers.get_all("Content-Length") or ["0"]
        length = _whole_number(values[0])
        if len(set(values)) > 1 or length is None:
            self._close_unread()
            raise invalid(f"Content-Length {_printable(', '.join(values), 60)!r} must be one whole number of bytes")
        if length == math.inf:  # not worth reading, whatever the limit
            self._close_unread()
            raise _body_too_large(values[0], self.limits)
        return length

    def _url_path(self) -> str:
        try:
            return urllib.parse.urlsplit(self.path).path
        except ValueError:  # e.g. "//[x": routing refuses it as it is
            return self.path

    def _route(self) -> dict:
        path = self._url_path()
        match = _PATH.match(path)
        if not match:
            raise ServingError(
                "NOT_FOUND", f"no such endpoint {path}; expected /v1/models/<name>[...][:predict|/metadata]"
            )
        route = {**match.groupdict(), "path": path}
        version = route["version"]
        if version is not None:
            number = _whole_number(version)
            if number is None or number > _INT64_MAX:
                raise invalid(
                    f"version {_shortened(version)!r} in the URL must be a whole number "
                    "that fits int64, as in TF Serving"
                )
            route["version"] = number
        return route

    def _receive(self, length: int, keep: bool) -> bytearray | None:
        """Reads `length` body bytes, keeping them or not; None when they did not all
        arrive within read_timeout_s (for the whole body, so a trickle cannot hold the
        worker). A growing bytearray costs the bytes that arrived, not Content-Length."""
        data = bytearray()
        self._reader.deadline = time.monotonic() + self.read_timeout_s
        got = 0
        while got < length:
            try:
                chunk = self.rfile.read1(min(length - got, _CHUNK_BYTES))
            except TimeoutError:
                chunk = b""
            if not chunk:  # timed out, or the client closed its side
                self._unread = 0
                self.close_connection = True  # a timed-out socket file cannot be read again
                return None
            got += len(chunk)
            if keep:
                data += chunk
        self._unread = 0
        return data

    def _drain(self) -> None:
        """Reads and drops an unread body: unread, it would be parsed as the next request,
        and a client still sending it would see a broken pipe, not our error. Bodies
        far over the limit are not worth reading; the connection is closed instead."""
        if not self._unread:
            return
        if self._unread > _DRAIN_FACTOR * self.limits.max_request_bytes:
            self._close_unread()
            return
        self._receive(self._unread, keep=False)

    def _get(self) -> dict:
        route = self._route()
        verb = route["verb"]
        if verb not in (None, "/metadata"):
            raise ServingError("NOT_FOUND", f"{verb} needs POST")
        args = (route["name"], route["version"], route["label"] or "")
        if verb == "/metadata":
            return wire.proto_json(self.repository.metadata(*args))
        return wire.proto_json(self.repository.status(*args))

    def _post(self) -> dict:
        route = self._route()
        if route["verb"] != ":predict":
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
            body, {name: spec.dtype for name, spec in specs.items()}, self.limits.max_elements
        )
        del body  # the parsed JSON is the largest thing held; the arrays replace it
        prefix = wire.ROW_KEY if row_format else wire.COLUMNAR_KEY
        sizes = {
            name: wire.array_size(array, f"{prefix}.{name}", self.limits.max_image_pixels)
            for name, array in inputs.items()
        }
        _check_memory(servable, signature_name, sizes, prefix, self.limits)
        _check_finite(inputs, prefix)
        outputs = servable.predict(signature_name, inputs)
        estimate = wire.json_response_memory_estimate(outputs)
        if estimate > self.limits.max_request_memory_bytes:
            raise _exhausted(
                f"the JSON response would need about {_mb(estimate)}, over the server's "
                f"per-request budget of {_mb(self.limits.max_request_memory_bytes)} "
                "(--max_request_memory_mb); call over gRPC for outputs this large"
            )
        return wire.predict_response_body(outputs, row_format)

    def _json_body(self):
        if self.headers.get("Content-Length") is None:
            self.close_connection = True
            raise invalid("a predict request needs a Content-Length header")
        length = self._unread
        if length > self.limits.max_request_bytes:
            raise _body_too_large(self.headers["Content-Length"], self.limits)
        data = self._receive(length, keep=True)
        if data is None:
            raise invalid(
                f"request body: Content-Length is {length} bytes, but they did not all arrive "
                f"within {self.read_timeout_s:g} s"
            )
        estimate = wire.json_memory_estimate(data)
        if estimate > self.limits.max_request_memory_bytes:
            raise _exhausted(
                f"request body of {length} bytes would need about {_mb(estimate)} to parse, "
                f"over the server's per-request budget of "
                f"{_mb(self.limits.max_request_memory_bytes)} (--max_request_memory_mb); "
                "send large tensors over gRPC"
            )
        try:
            return json.loads(data)
        except RecursionError as error:
            raise invalid(
                "request body nests arrays or objects too deeply to parse (a tensor has at "
                f"most {wire.MAX_RANK} dimensions)"
            ) from error
        except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
            raise invalid(f"request body is not valid JSON: {error}") from error


def _readable(sock: socket.socket, timeout: float) -> bool:
    poller = select.poll()  # select.select fails for descriptors above 1023
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


class _PooledHTTPServer(http.server.HTTPServer):
    """An HTTPServer whose connections are served by a fixed pool of worker threads
    (ThreadingHTTPServer starts a thread per connection, without bound). Connections
    beyond _QUEUED_PER_WORKER per worker waiting are answered 503 and closed."""

    def __init__(self, address, handler, workers: int):
        # Set before binding: a failed bind calls server_close, which needs them.
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rest")
        self._max_waiting = workers * _QUEUED_PER_WORKER
        self._lock = threading.Lock()
        self._waiting = 0
        # Workers that will give their connection up for a waiting one, and have not
        # started one since: each waiting connection needs one, no more.
        self._claimed = 0
        self._open: set = set()
        self.stopping = False
        super().__init__(address, handler)

    def waiting(self) -> int:
        return self._waiting

    def claim_for_waiting(self) -> bool:
        """Whether a waiting connection is left for the calling worker to take; if so
        it is the caller's, and the caller must end its connection."""
        with self._lock:
            if self._waiting <= self._claimed:
                return False
            self._claimed += 1
            return True

    def process_request(self, request, client_address):
        with self._lock:
            refused = self._waiting >= self._max_waiting
            if not refused:
                self._waiting += 1
                self._open.add(request)
        if refused:
            _refuse_busy(request, client_address)
            return
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request, client_address):
        with self._lock:
            self._waiting -= 1
            self._claimed = max(self._claimed - 1, 0)
        try:
            self.finish_request(request, client_address)
        except Exception:  # a bug in the handler: keep serving, keep the trace
            _LOG.exception("REST %s: connection failed", client_address[0])
        finally:
            with self._lock:
                self._open.discard(request)
            self.shutdown_request(request)

    def server_close(self):
        """Stops listening and ends every open connection (workers blocked reading one
        return at once) before the pool winds down."""
        self.stopping = True
        super().server_close()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # what is left was queued, and cancelled before a worker took it
            cancelled, self._open = self._open, set()
        for connection in cancelled:
            connection.close()


def _refuse_busy(request: socket.socket, client_address) -> None:
    body = b'{"error": "server busy: too many connections waiting; retry later"}'
    reply = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    try:
        request.setblocking(False)  # the accept loop must not wait on this client
        request.send(reply)
        request.shutdown(socket.SHUT_WR)
        request.recv(_CHUNK_BYTES)  # what the client sent so far: unread, it would reset the reply
    except OSError:  # BlockingIOError included: nothing sent yet
        pass
    finally:
        request.close()
    _LOG.warning("REST %s: refused a connection, too many waiting", client_address[0])


# --- gRPC -------------------------------------------------------------------------


class _Undecodable:
    """A request message that did not parse (grpc would log a traceback and answer
    INTERNAL if the deserializer raised)."""

    def __init__(self, message_name: str, error: Exception):
        self.message = f"request is not a valid {message_name} message ({error})"


def _lenient_parser(message_class):
    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            return _Undecodable(message_class.DESCRIPTOR.full_name, error)

    return parse


def _abort_on_error(method):
    """Turns ServingErrors (and undecodable messages) into the call's gRPC status,
    with one log line; other exceptions are bugs: INTERNAL, with their trace logged."""

    def wrapped(self, request, context):
        try:
            if isinstance(request, _Undecodable):
                raise invalid(request.message)
            return method(self, request, context)
        except ServingError as error:
            _LOG.warning("gRPC %s %s -> %s: %s", context.peer(), method.__name__, error.code, _printable(error.message))
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        except Exception as error:  # noqa: BLE001 - any failure is this call's only
            _LOG.exception("gRPC %s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

    return wrapped


def _spec_args(model_spec) -> tuple:
    which = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if which == "version" else None
    label = model_spec.version_label if which == "version_label" else ""
    return model_spec.name, version, label


class _PredictionService:
    def __init__(self, repository: ModelRepository, limits: Limits):
        self.repository = repository
        self.limits = limits

    @_abort_on_error
    def Predict(self, request, context):  # noqa: N802 - gRPC's naming
        cancel = Cancellation()
        if not context.add_callback(cancel.cancel):  # the call already ended: the caller left
            cancel.cancel()
        servable = self.repository.resolve(*_spec_args(request.model_spec))
        fields = {name: f"inputs.{name}" for name in request.inputs}
        # From the declared shapes and values, before decoding: this is every input's
        # check_tensor_proto; from_tensor_proto only decodes.
        sizes = {
            name: wire.check_tensor_proto(
                proto, fields[name], self.limits.max_elements, self.limits.max_image_pixels
            )
            for name, proto in request.inputs.items()
        }
        _check_memory(servable, request.model_spec.signature_name, sizes, "inputs", self.limits)
        inputs = {name: wire.from_tensor_proto(proto, fields[name]) for name, proto in request.inputs.items()}
        _check_finite(inputs, "inputs")
        outputs = servable.predict(
            request.model_spec.signature_name, inputs, list(request.output_filter), cancel
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


class _ModelService:
    def __init__(self, repository: ModelRepository):
        self.repository = repository

    @_abort_on_error
    def GetModelStatus(self, request, context):  # noqa: N802
        return self.repository.status(*_spec_args(request.model_spec))


def _grpc_handlers(repository: ModelRepository, limits: Limits) -> list:
    """The services' handlers, registered by hand (not with the generated
    add_*_to_server) to parse requests with `_lenient_parser`. Methods left out
    (Classify, Regress, ...) are answered UNIMPLEMENTED by grpc."""

    def unary(function, request_class, response_class):
        return grpc.unary_unary_rpc_method_handler(
            function, request_deserializer=_lenient_parser(request_class),
            response_serializer=response_class.SerializeToString,
        )

    prediction, models = _PredictionService(repository, limits), _ModelService(repository)
    return [
        grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
            "Predict": unary(prediction.Predict, predict_pb2.PredictRequest, predict_pb2.PredictResponse),
            "GetModelMetadata": unary(
                prediction.GetModelMetadata, get_model_metadata_pb2.GetModelMetadataRequest,
                get_model_metadata_pb2.GetModelMetadataResponse,
            ),
        }),
        grpc.method_handlers_generic_handler("tensorflow.serving.ModelService", {
            "GetModelStatus": unary(
                models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest,
                get_model_status_pb2.GetModelStatusResponse,
            ),
        }),
    ]


# --- Both -------------------------------------------------------------------------


class DevServer:
    """REST and gRPC front ends over one ModelRepository.

    Ports 0 pick free ports (`rest_port` / `grpc_port` hold the real ones after
    `start`). `threads` bounds concurrent gRPC calls, `rest_threads` concurrent REST
    connections. `max_request_bytes`, `max_request_memory_bytes`, `max_elements` and
    `max_image_pixels` are the `Limits`. A REST request's line and headers must arrive
    within `read_timeout_s` of its first byte, and then its body within
    `read_timeout_s`; an idle keep-alive connection is closed after `idle_timeout_s`.
    gRPC answers RESOURCE_EXHAUSTED beyond _RPCS_PER_THREAD calls in flight a thread.
    """

    def __init__(
        self,
        repository: ModelRepository,
        host: str = "localhost",
        rest_port: int = 8501,
        grpc_port: int = 8500,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        threads: int = 16,
        *,
        max_request_memory_bytes: int = DEFAULT_MAX_REQUEST_MEMORY_BYTES,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        rest_threads: int = 16,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ):
        self.repository = repository
        self.limits = Limits(max_request_bytes, max_request_memory_bytes, max_elements, max_image_pixels)
        handler = type("Handler", (_RestHandler,), {
            "repository": repository, "limits": self.limits,
            "read_timeout_s": read_timeout_s, "idle_timeout_s": idle_timeout_s,
        })
        try:
            self._http = _PooledHTTPServer((host, rest_port), handler, rest_threads)
        except OSError as error:
            raise OSError(f"cannot listen for REST on {host}:{rest_port}: {error}") from error
        self.rest_port = self._http.server_address[1]
        options = [
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ]
        self._grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=threads), options=options,
            handlers=_grpc_handlers(repository, self.limits),
            maximum_concurrent_rpcs=_RPCS_PER_THREAD * threads,
        )
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
