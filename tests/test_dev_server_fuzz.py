"""Seeded malformed REST and gRPC requests against the development server, from 8
threads: none gets a 5xx or INTERNAL/UNKNOWN, none hangs, memory stays bounded, and a
valid request gets the same answer before and after. Besides mutated and random bytes,
the classes that once got past the checks: string fills and huge declared shapes,
sample rates that resample a few samples into millions, numbers of thousands of digits
in headers and URLs, and values outside their dtype's range."""

import base64
import concurrent.futures
import http.client
import io
import json
import random
import socket
import struct
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from tf_factorgan.serving import client as serving_client
from tf_factorgan.serving.dev_server import DevServer

SEED = 11
THREADS = 8
CLIENT_TIMEOUT_S = 15.0
DEADLINE_S = 120.0
# The requests below are at most ~1 MB each and are refused before anything larger is
# allocated, so RSS may only grow by allocator and thread noise; 300 MB is that with
# room to spare, far under the 4.8 GB a single huge-shape gRPC request used to take
# (or the 2 GB of one string filling [1000000], or the 1.3 GB of 1000 samples at 1 Hz).
RSS_GROWTH_BOUND = 300 << 20
# Sample rates: outside the served [8000, 192000] Hz, and a few within it.
RATES = (0, 1, -1, 7999, 192001, 2**31 - 1, -2**31, 8000, 44100, 192000)
PREDICT = "/v1/models/segmentation:predict"
SEPARATE = "/v1/models/separation:predict"


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        kilobytes = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kilobytes << 10


@pytest.fixture(scope="module")
def fuzz_server(dev_server):
    server = DevServer(
        dev_server.repository, rest_port=0, grpc_port=0, max_request_bytes=1 << 20,
        max_request_memory_bytes=64 << 20, max_elements=200_000, max_image_pixels=1 << 20,
        rest_threads=8, read_timeout_s=1.0, idle_timeout_s=2.0,
    ).start()
    yield server
    server.stop()


def _png(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _valid_bodies() -> list:
    png = base64.b64encode(_png(0)).decode()
    return [
        json.dumps({"signature_name": "predict_bytes", "instances": [{"b64": png}]}).encode(),
        json.dumps({"instances": np.full((1, 4, 4, 3), 0.5).tolist()}).encode(),
        json.dumps({"inputs": {"waveform": [[0.0] * 64], "sample_rate": 8000}}).encode(),
    ]


def _valid_messages() -> list:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "segmentation"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.full((1, 4, 4, 3), 0.5, np.float32)))
    return [request.SerializeToString()]


def _post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def _mutated(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        position = rng.randrange(len(data))
        action = rng.choice(("flip", "insert", "delete", "cut"))
        if action == "flip":
            data[position] ^= 1 << rng.randrange(8)
        elif action == "insert":
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif action == "delete":
            del data[position:position + rng.randint(1, 16)]
        elif position:
            del data[position:]
    return bytes(data)


def _png_header_bytes(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"


def _png_header(width: int, height: int) -> str:
    return base64.b64encode(_png_header_bytes(width, height)).decode()


def _rest_cases(rng: random.Random) -> list:
    """(kind, raw request, framed): a framed request has a whole request line, headers
    and the body its Content-Length promises, so it must be answered."""
    valid = _valid_bodies()
    cases = []
    for _ in range(150):
        cases.append(("mutated body", _post(PREDICT, _mutated(rng, rng.choice(valid))), True))
    for _ in range(60):
        cases.append(("random body", _post(PREDICT, rng.randbytes(rng.randint(1, 4000))), True))
    for _ in range(30):
        depth = rng.choice((33, 200, 600, 990, 5000, 50_000))
        inner = rng.choice((b"0", b'"a"', b'{"b64": "AA=="}'))
        prefix = rng.choice((b'{"inputs": ', b'{"signature_name": "predict_bytes", "inputs": ', b""))
        suffix = b"}" if prefix else b""
        cases.append(("deep nesting", _post(PREDICT, prefix + b"[" * depth + inner + b"]" * depth + suffix), True))
    for _ in range(20):
        text = "".join(rng.choice("AB=é\u00ff\ud7ff%/+ \n") for _ in range(rng.randint(1, 12)))
        body = json.dumps({"signature_name": "predict_bytes", "instances": [{"b64": text}]}, ensure_ascii=rng.random() < 0.5)
        cases.append(("bad b64", _post(PREDICT, body.encode("utf-8", "surrogatepass")), True))
    for _ in range(20):
        width, height = rng.choice(((16000, 16000), (10000, 10000), (1 << 31, 2), (0, 0), (2000, 2000)))
        body = json.dumps({"signature_name": "predict_bytes", "instances": [{"b64": _png_header(width, height)}]})
        cases.append(("huge image header", _post(PREDICT, body.encode()), True))
    for _ in range(20):
        value = rng.choice(("NaN", "Infinity", "-Infinity", "1e39", "1e400", "-1e999"))
        body = '{"inputs": {"waveform": [[0.0, %s]], "sample_rate": 8000}}' % value
        cases.append(("non-finite", _post(SEPARATE, body.encode()), True))
    for _ in range(20):
        length = rng.choice(("\xb2", "-1", "1e3", " 5", "0x10", "99999999999999999999", "\u0661\u0662"))
        request = b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nContent-Length: " + length.encode("latin-1", "replace") + b"\r\n\r\n{}"
        cases.append(("bad Content-Length", request, True))
    for _ in range(6):  # shorter than promised: answered after the 1 s read timeout
        cases.append(("short body", b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"inputs\"", True))
    for _ in range(20):
        version = rng.choice(("\xb2", "1.5", "-1", "99999999999999999999999", "\xe9", "0x1"))
        request = b"GET /v1/models/segmentation/versions/" + version.encode("latin-1") + b" HTTP/1.1\r\n\r\n"
        cases.append(("bad version", request, True))
    for _ in range(30):
        digits = (rng.choice("0123456789") * rng.choice((19, 20, 4300, 4301, 5000, 20_000))).encode()
        cases.append(("long number", rng.choice((
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nContent-Length: " + digits + b"\r\n\r\n{}",
            b"POST " + PREDICT.encode() + b" HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: " + digits + b"\r\n\r\n",
            b"GET /v1/models/segmentation/versions/" + digits + rng.choice((b"", b"/metadata")) + b" HTTP/1.1\r\n\r\n",
            _post("/v1/models/segmentation/versions/" + digits.decode() + ":predict", b"{}"),
        )), True))
    for _ in range(20):
        samples = rng.choice((1, 100, 1000))
        body = '{"inputs": {"waveform": [[%s]], "sample_rate": %d}}' % (", ".join(["0.0"] * samples), rng.choice(RATES))
        cases.append(("sample rate", _post(SEPARATE, body.encode()), True))
    for _ in range(20):
        method = rng.choice(("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD", "CONNECT", "X" * 40))
        cases.append(("other method", f"{method} /v1/models/segmentation HTTP/1.1\r\nContent-Length: 0\r\n\r\n".encode(), True))
    for _ in range(24):
        garbage = rng.randbytes(rng.randint(1, 300))
        cases.append(("random request", garbage + rng.choice((b"", b"\r\n\r\n")), False))
    return cases


def _grpc_cases(rng: random.Random) -> list:
    valid = _valid_messages()
    cases = [("random message", rng.randbytes(rng.randint(0, 2000))) for _ in range(80)]
    cases += [("mutated message", _mutated(rng, valid[0])) for _ in range(100)]
    for _ in range(40):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = rng.choice(("segmentation", "separation", "nope"))
        tensor = request.inputs[rng.choice(("images", "waveform"))]
        tensor.dtype = rng.choice((1, 2, 3, 4, 7, 9, 21, 0, 99))
        for _ in range(rng.randint(0, 5)):
            tensor.tensor_shape.dim.add().size = rng.choice((-1, 0, 1, 3, 8000, 1 << 40))
        kind = rng.random()
        if kind < 0.3:
            tensor.tensor_content = rng.randbytes(rng.randint(0, 64))
        elif kind < 0.6:
            tensor.float_val.extend([rng.choice((0.5, float("nan"), float("inf")))] * rng.randint(1, 3))
        cases.append(("declared shape", request.SerializeToString()))
    for _ in range(30):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "segmentation", "predict_bytes"
        tensor = request.inputs["images"]
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.dim.add().size = rng.choice((2, 100, 200_000, 1 << 30))
        tensor.string_val.append(rng.choice((b"x", b"x" * 2000, _png_header_bytes(rng.choice((1, 64, 4000)), 4000))))
        cases.append(("string fill", request.SerializeToString()))
    for _ in range(20):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "separation"
        shape = rng.choice(((1, rng.randint(1, 1000)), (1, rng.randint(1, 500), 2)))
        request.inputs["waveform"].CopyFrom(tf.make_tensor_proto(np.zeros(shape, np.float32)))
        request.inputs["sample_rate"].CopyFrom(tf.make_tensor_proto(np.array(rng.choice(RATES), np.int32)))
        cases.append(("sample rate", request.SerializeToString()))
    for _ in range(30):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "segmentation"
        dtype, field, values = rng.choice((
            (types_pb2.DT_UINT8, "int_val", (256, -1, 300, 2**31 - 1)), (types_pb2.DT_INT8, "int_val", (128, -129, 1000)),
            (types_pb2.DT_INT16, "int_val", (1 << 15, -40000)), (types_pb2.DT_UINT16, "int_val", (1 << 16, -1)),
            (types_pb2.DT_HALF, "half_val", (1 << 16, 1 << 20, -1)), (types_pb2.DT_BFLOAT16, "half_val", (1 << 16, -7)),
        ))
        request.model_spec.signature_name = "predict_uint8" if dtype == types_pb2.DT_UINT8 else ""
        tensor = request.inputs["images"]
        tensor.dtype = dtype
        for size in (1, 1, 1, 3):
            tensor.tensor_shape.dim.add().size = size
        getattr(tensor, field).extend(rng.choice(((rng.choice(values),), (0, rng.choice(values), 0))))
        cases.append(("out of range", request.SerializeToString()))
    return cases


def _send_rest(port: int, request: bytes, method: str):
    """-> HTTP status, or "closed" when the server closed without answering."""
    with socket.create_connection(("localhost", port), timeout=CLIENT_TIMEOUT_S) as sock:
        try:
            sock.sendall(request)
            response = http.client.HTTPResponse(sock, method=method)
            response.begin()
            payload = response.read()
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            return "closed"
    if response.status >= 400 and method != "HEAD":
        assert "error" in json.loads(payload), payload[:200]
    return response.status


def _send_grpc(channel, data: bytes):
    call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    try:
        call(data, timeout=CLIENT_TIMEOUT_S)
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


def _reference_answers(server) -> tuple:
    rest, grpc_client = serving_client.RestClient(f"localhost:{server.rest_port}"), serving_client.GrpcClient(f"localhost:{server.grpc_port}")
    audio = np.linspace(-0.1, 0.1, 2000, dtype=np.float32)[:, None]
    return (
        serving_client.segment_image(rest, "segmentation", _png(1)),
        serving_client.segment_image(grpc_client, "segmentation", _png(1)),
        serving_client.separate_audio(rest, "separation", audio, 8000)["vocals"].tobytes(),
        serving_client.separate_audio(grpc_client, "separation", audio, 8000)["vocals"].tobytes(),
    )


def test_fuzzed_requests_get_client_errors_only(fuzz_server):
    rng = random.Random(SEED)
    rest_cases, grpc_cases = _rest_cases(rng), _grpc_cases(rng)
    assert len(rest_cases) + len(grpc_cases) >= 500
    before_answers = _reference_answers(fuzz_server)
    rss_before = _rss_bytes()
    channel = grpc.insecure_channel(f"localhost:{fuzz_server.grpc_port}")

    def send(case):
        if len(case) == 3:
            kind, request, framed = case
            method = request.split(b" ", 1)[0].decode("latin-1")
            return "rest", kind, framed, _send_rest(fuzz_server.rest_port, request, method)
        kind, data = case
        return "grpc", kind, True, _send_grpc(channel, data)

    cases = rest_cases + grpc_cases
    random.Random(SEED + 1).shuffle(cases)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(send, case) for case in cases]
        done, pending = concurrent.futures.wait(futures, timeout=DEADLINE_S)
        assert not pending, f"{len(pending)} requests unanswered after {DEADLINE_S} s"
    elapsed = time.monotonic() - started
    channel.close()
    results = [future.result() for future in futures]  # a client timeout (hang) raises here

    server_faults = [r for r in results if r[3] in ("INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED") or (isinstance(r[3], int) and r[3] >= 500)]
    assert not server_faults, server_faults[:10]
    unanswered = [r for r in results if r[2] and r[3] == "closed"]
    assert not unanswered, unanswered[:10]
    # Most requests are refused (the rest are mutations that stayed valid).
    refused = sum(r[3] not in (200, "OK") for r in results)
    assert refused > 0.8 * len(results), (refused, len(results))
    growth = _rss_bytes() - rss_before
    assert growth < RSS_GROWTH_BOUND
    assert _reference_answers(fuzz_server) == before_answers
    print(f"{len(results)} fuzzed requests in {elapsed:.1f} s, {refused} refused, RSS {growth / 2**20:+.0f} MiB")
