"""A development stand-in for `tensorflow_model_server`: the same export folder, the
same REST and gRPC calls, in one Python process.

TF Serving itself ships as a Docker image or from its own apt repository, not from
PyPI; this server lets the client, the tests and local experiments run without it.
Production deployments should use TF Serving (docs/export_serving.md).

REST (one reader thread, and a fixed pool of `rest_threads` workers):
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            model status
  GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   signature defs
  POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    row or columnar body
gRPC (grpc thread pool of `threads`): PredictionService.Predict and GetModelMetadata,
ModelService.GetModelStatus. A Predict whose caller cancels it or goes away stops its
graph (CANCELLED) instead of computing to the end.

Errors: unknown model, version, label or signature -> 404 / NOT_FOUND; malformed JSON,
missing or extra inputs, wrong dtype or shape, undecodable images or audio, a sample
rate outside the separation exports' range, non-finite numbers, a TensorProto whose
values do not match its declared shape or dtype, a version beyond int64, an
undecodable gRPC message, a body shorter than its Content-Length -> 400 /
INVALID_ARGUMENT; any other HTTP method -> 400 "Malformed request" (as TF Serving); a
request over one of the `Limits` -> 413 / RESOURCE_EXHAUSTED. Errors are {"error":
message} over REST, the message names the field, each refusal is one log line, and
the server keeps serving.

Every bound is checked before the large allocation it prevents: the body size from
Content-Length (before a 100 Continue), the parsing memory from the body's delimiters,
a gRPC tensor's size from its declared shape and values (a string filling a shape
counts once per element), an image's pixels from its header, and what the graph will
allocate from the inputs (`Servable.memory_estimate`: resampling, image decoding) before
it runs.

REST connections: the reader thread holds every connection that has no complete
request yet (new ones, kept-alive ones between requests, ones still sending) and
reads them without blocking; a worker gets a connection only once its request has
arrived: its line and headers, and its body when that is at most _READ_AHEAD_BYTES (a
larger body is read by the worker). So slow or idle clients cost no worker. A
request's line and headers must arrive within `read_timeout_s` of its first byte, and
then its body within `read_timeout_s`; an idle connection is closed after
`idle_timeout_s`. Transfer-Encoding (chunked bodies) is refused with 400: bodies need
a Content-Length.

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
import selectors
import socket
import threading
import time
import urllib.parse

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from tf_factorgan.serving import wire
from tf_factorgan.serving.repository import Cancellation, ModelRepository
from tf_factorgan.serving.wire import ServingError, invalid

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
# The reader thread reads a request's line and headers up to this size (a longer head
# goes to a worker, which refuses its long lines), and then bodies up to this size:
# a status call, a small predict. Larger bodies are read by a worker.
_MAX_HEAD_BYTES = 1 << 16
_READ_AHEAD_BYTES = 1 << 16
# Connections open at once (the reader's, queued and being answered) before new ones
# are answered 503: each holds a descriptor and at most the two buffers above.
_MAX_CONNECTIONS = 1024
# Requests that arrived and wait for a worker, per worker, before new ones get 503.
_QUEUED_PER_WORKER = 16
_POLL_S = 0.5
# The end of a request's head: its blank line (http.server also takes a bare LF).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# Header lines as http.server reads them (no space before the colon).
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(.*?)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_NO_READ_AHEAD = re.compile(rb"^(transfer-encoding|expect):", re.IGNORECASE | re.MULTILINE)
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
    """A connection's reads: first the bytes the reader thread already received
    (`pending`), then the socket's, each allowed only what is left until `deadline` (a
    time.monotonic(); None: the socket's own timeout). A per-read timeout alone lets a
    client trickle a byte just inside it, forever; this ends the request by its
    deadline however the bytes arrive. With `socket_reads` False, reads past `pending`
    return None (nothing more now) without touching the socket."""

    def __init__(self, sock: socket.socket, pending: bytearray):
        super().__init__()
        self._sock = sock
        self._pending = pending
        self.deadline = None
        self.socket_reads = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        if self._pending:
            count = min(len(buffer), len(self._pending))
            buffer[:count] = self._pending[:count]
            del self._pending[:count]
            return count
        if not self.socket_reads:
            return None
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive in time")
            self._sock.settimeout(left)
        return self._sock.recv_into(buffer)

    def take_pending(self) -> bytearray:
        pending, self._pending = self._pending, bytearray()
        return pending


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
        self._conn = self.request  # a _Connection; http.server's setup needs its socket
        self.request = self._conn.sock
        super().setup()
        self.rfile.close()  # replaced by one that starts with what the reader thread read
        self._reader = _DeadlineReader(self.connection, self._conn.take_data())
        self._reader.deadline = self._conn.head_deadline
        self.rfile = io.BufferedReader(self._reader)
        self._linger = False

    def handle(self):
        """Answers the one request the reader thread saw arrive; a kept-alive
        connection goes back to it with any bytes already read past the request."""
        try:
            self.close_connection = True  # parse_request keeps HTTP/1.1 connections
            self.handle_one_request()
            if self._linger:
                _linger(self.connection)
            elif not self.close_connection:
                self._reader.socket_reads = False
                self._conn.keep(bytes(self.rfile.peek(1)) + self._reader.take_pending())
        except (ConnectionError, TimeoutError) as error:  # the client went away or stopped reading
            _LOG.info("REST %s: connection dropped (%s)", self.client_address[0], type(error).__name__)

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
        worker; from when the reader thread saw it start, when it read the body
        ahead). A growing bytearray costs the bytes that arrived, not Content-Length."""
        data = bytearray()
        self._reader.deadline = self._conn.body_deadline or time.monotonic() + self.read_timeout_s
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


class _Connection:
    """A REST connection and what the reader thread knows of its next request:
    `data` received and not yet handled, the deadline the reader keeps it to, and once
    its head has arrived the deadlines for the rest (time.monotonic())."""

    def __init__(self, sock: socket.socket, address, now: float, idle_timeout_s: float):
        self.sock, self.address = sock, address
        self.kept = False  # set by a worker that answered and keeps the connection
        self.wait_for_next(bytearray(), now, idle_timeout_s)

    def wait_for_next(self, data: bytearray, now: float, idle_timeout_s: float) -> None:
        """Starts over for the next request, with the bytes of it already `data`."""
        self.data = data
        self.deadline = now + idle_timeout_s  # for a first byte
        self.head_deadline = self.body_deadline = None
        self.head_end = self.body_length = self.scanned = 0

    def take_data(self) -> bytearray:
        data, self.data = self.data, bytearray()
        return data

    def keep(self, leftover: bytes) -> None:
        """Called by the worker that answered: the connection stays open, and the bytes
        it read past its request start the next one."""
        self.data = bytearray(leftover)
        self.kept = True

    def receive(self, now: float, read_timeout_s: float) -> bool:
        """Reads what arrived (the socket is non-blocking); False when the client
        closed its side or the connection broke."""
        try:
            chunk = self.sock.recv(_READ_AHEAD_BYTES)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if chunk and not self.data and self.head_deadline is None:  # its first byte
            self.head_deadline = self.deadline = now + read_timeout_s
        self.data += chunk
        return bool(chunk)

    def ready(self, now: float, read_timeout_s: float) -> bool:
        """Whether a worker should take it now: its head and its read-ahead body have
        arrived, or its head is too long to read here, or its body is not to be read
        here (too large, chunked, or awaiting 100 Continue)."""
        if self.head_deadline is None:
            if not self.data:
                return False
            self.head_deadline = self.deadline = now + read_timeout_s  # pipelined bytes
        if not self.head_end:
            # From where the last search ended (less a partial blank line): a trickled
            # head is scanned once, not once per byte.
            end = _HEAD_END.search(self.data, max(self.scanned - 3, 0), _MAX_HEAD_BYTES)
            if end is None:
                self.scanned = len(self.data)
                return len(self.data) > _MAX_HEAD_BYTES
            self.head_end = end.end()
            self.body_length = _read_ahead_length(bytes(self.data[:self.head_end]))
            if self.body_length:
                self.body_deadline = self.deadline = now + read_timeout_s
        return len(self.data) >= self.head_end + self.body_length


def _read_ahead_length(head: bytes) -> int:
    """The body length the reader thread reads before a worker takes the request: its
    one Content-Length up to _READ_AHEAD_BYTES, else 0 (the worker reads or refuses the
    body itself)."""
    if _NO_READ_AHEAD.search(head):
        return 0
    lengths = _CONTENT_LENGTH.findall(head)
    length = _whole_number(lengths[0].decode("latin-1")) if len(lengths) == 1 else None
    return length if length is not None and length <= _READ_AHEAD_BYTES else 0


class _PooledHTTPServer(http.server.HTTPServer):
    """An HTTPServer whose accept loop (`serve_forever`, the reader thread) also reads
    every connection without a complete request, and hands those with one to a fixed
    pool of worker threads (ThreadingHTTPServer starts a thread per connection, without
    bound). A connection whose line and headers do not arrive within read_timeout_s of
    its first byte is closed, as is one idle for idle_timeout_s. Beyond
    _QUEUED_PER_WORKER requests per worker waiting, or _MAX_CONNECTIONS open, new ones
    are answered 503 and closed."""

    # The listen backlog (socketserver's 5 dropped the SYNs of a burst of clients, which
    # retried a second later).
    request_queue_size = _MAX_CONNECTIONS

    def __init__(self, address, handler, workers: int):
        # Set before binding: a failed bind calls server_close, which needs them.
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rest")
        self._max_waiting = workers * _QUEUED_PER_WORKER
        self._lock = threading.Lock()
        self._waiting = self._answering = 0  # requests queued for a worker, being answered
        self._open: set = set()  # every _Connection not yet closed
        self._returned: list = []  # kept-alive connections workers gave back
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._stopped = threading.Event()
        self.stopping = False
        super().__init__(address, handler)

    def waiting(self) -> int:
        return self._waiting

    def answering(self) -> int:
        return self._answering

    def serve_forever(self, poll_interval: float = _POLL_S) -> None:
        """The reader thread: accepts, reads, hands requests to the pool, closes
        connections past their deadlines, until `shutdown`."""
        handler = self.RequestHandlerClass
        self.socket.setblocking(False)
        self._wake_read.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        reading: set = set()  # the connections the reader holds
        try:
            while not self.stopping:
                now = time.monotonic()
                timeout = min([c.deadline for c in reading], default=now + poll_interval) - now
                for key, _ in self._selector.select(min(max(timeout, 0.0), poll_interval)):
                    try:
                        self._on_event(key, reading, handler)
                    except Exception:  # a bug: keep serving (the others), keep the trace
                        _LOG.exception("REST: the reader thread failed")
                        if key.data in reading:
                            self._close(key.data, reading)
                self._expire(reading, time.monotonic())
        finally:
            for connection in list(reading):
                self._close(connection, reading)
            self._stopped.set()

    def _on_event(self, key, reading: set, handler) -> None:
        now = time.monotonic()
        if key.fileobj is self.socket:
            self._accept(reading, now, handler.idle_timeout_s)
        elif key.fileobj is self._wake_read:
            self._take_returned(reading, now, handler)
        elif not key.data.receive(now, handler.read_timeout_s):
            self._closed_by_client(key.data, reading)
        elif key.data.ready(now, handler.read_timeout_s):
            self._dispatch(key.data, reading)

    def shutdown(self) -> None:
        """Ends `serve_forever` (which closes the connections it holds) and waits."""
        self.stopping = True
        self._wake()
        self._stopped.wait()

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"x")
        except OSError:  # already full (it is woken anyway) or closed
            pass

    def _accept(self, reading: set, now: float, idle_timeout_s: float) -> None:
        while True:
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as error:  # e.g. out of file descriptors: try again later
                _LOG.warning("REST: accept failed (%s)", error)
                return
            with self._lock:
                refused = len(self._open) >= _MAX_CONNECTIONS
            if refused:
                _refuse_busy(sock, address, "too many connections open")
                continue
            sock.setblocking(False)
            connection = _Connection(sock, address, now, idle_timeout_s)
            with self._lock:
                self._open.add(connection)
            self._read(connection, reading)

    def _read(self, connection, reading: set) -> None:
        reading.add(connection)
        self._selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _take_returned(self, reading: set, now: float, handler) -> None:
        """Takes back the connections workers kept alive; one whose next request is
        already there goes straight back to the pool."""
        try:
            while self._wake_read.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            returned, self._returned = self._returned, []
        for connection in returned:
            connection.wait_for_next(connection.data, now, handler.idle_timeout_s)
            if connection.ready(now, handler.read_timeout_s):
                self._dispatch(connection, reading)
            else:
                self._read(connection, reading)

    def _closed_by_client(self, connection, reading: set) -> None:
        """A client that closed its side after its head (e.g. with a short body) is
        answered by a worker; otherwise there is nothing to answer."""
        if connection.head_end:
            self._dispatch(connection, reading)
        else:
            self._close(connection, reading)

    def _expire(self, reading: set, now: float) -> None:
        for connection in [c for c in reading if c.deadline <= now]:
            if connection.head_end:  # a read-ahead body came short: the worker says so
                self._dispatch(connection, reading)
                continue
            if connection.data:
                _LOG.warning(
                    "REST %s: the request line and headers did not arrive within %g s of its "
                    "first byte; closed", connection.address[0], self.RequestHandlerClass.read_timeout_s,
                )
            self._close(connection, reading)

    def _dispatch(self, connection, reading: set) -> None:
        if connection in reading:
            reading.discard(connection)
            self._selector.unregister(connection.sock)
        with self._lock:
            refused = self._waiting >= self._max_waiting
            if not refused:
                self._waiting += 1
        if refused:
            with self._lock:
                self._open.discard(connection)
            _refuse_busy(connection.sock, connection.address, "too many requests waiting")
            return
        self._pool.submit(self._serve, connection)

    def _close(self, connection, reading: set | None = None) -> None:
        if reading is not None and connection in reading:
            reading.discard(connection)
            self._selector.unregister(connection.sock)
        with self._lock:
            self._open.discard(connection)
        self.shutdown_request(connection.sock)

    def _serve(self, connection) -> None:
        with self._lock:
            self._waiting -= 1
            self._answering += 1
        connection.kept = False
        try:
            connection.sock.setblocking(True)
            self.finish_request(connection, connection.address)
        except Exception:  # a bug in the handler: keep serving, keep the trace
            _LOG.exception("REST %s: connection failed", connection.address[0])
            connection.kept = False
        finally:
            with self._lock:
                self._answering -= 1
        if connection.kept and not self.stopping:
            connection.sock.setblocking(False)
            with self._lock:
                self._returned.append(connection)
            self._wake()
        else:
            self._close(connection)

    def server_close(self):
        """Stops listening and ends every open connection (workers blocked reading one
        return at once) before the pool winds down."""
        self.stopping = True
        super().server_close()
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:  # what is left was queued, and cancelled before a worker took it
            cancelled, self._open = self._open, set()
        for connection in cancelled:
            connection.sock.close()
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()


def _refuse_busy(request: socket.socket, client_address, reason: str) -> None:
    body = b'{"error": "server busy: %s; retry later"}' % reason.encode()
    reply = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    try:
        request.setblocking(False)  # the reader thread must not wait on this client
        request.send(reply)
        request.shutdown(socket.SHUT_WR)
        request.recv(_CHUNK_BYTES)  # what the client sent so far: unread, it would reset the reply
    except OSError:  # BlockingIOError included: nothing sent yet
        pass
    finally:
        request.close()
    _LOG.warning("REST %s: refused a connection, %s", client_address[0], reason)


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
    `start`). `threads` bounds concurrent gRPC calls, `rest_threads` REST requests
    answered at once (connections waiting for their request cost no thread).
    `max_request_bytes`, `max_request_memory_bytes`, `max_elements` and
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
