"""Serving soak: mixed requests (valid and malformed, REST and gRPC) against the
development server, from several clients at once, while slow clients trickle their
requests a byte a second; prints p50 / p99 latency per kind and for the valid
("normal") requests together, what became of the slow clients, and the server's RSS as
the run goes (after one warm-up call of each kind, which traces the graphs).

  python -m benchmarks.serving_soak [--requests=2000] [--concurrency=8] [--slow_clients=200]

The server runs as its own process (`python -m serving.serve`, 2 s read timeout), so
its RSS (/proc/<pid>/status) is its alone. Models are the tests' tiny generators (16x16
U-Net, small masking U-Net), so latency is the serving path's own cost, not the
model's. Half the slow clients trickle their headers, half a body of 1000 bytes; each
reconnects when the server cuts it.
"""

import concurrent.futures
import http.client
import io
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
from absl import app, flags
from PIL import Image

flags.DEFINE_integer("requests", 2000, "Requests in all.", lower_bound=10)
flags.DEFINE_integer("concurrency", 8, "Concurrent clients.", lower_bound=1)
flags.DEFINE_integer("slow_clients", 200, "Clients trickling a byte a second meanwhile.", lower_bound=0)
FLAGS = flags.FLAGS
VALID = ("REST segment 64x64 PNG", "gRPC segment 64x64 PNG", "REST separate 1 s stereo", "gRPC separate 1 s stereo")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _export(base: str) -> None:
    from tf_factorgan.export import savedmodel
    from tf_factorgan.serving import config
    from tests.conftest import SERVING_LOAD_SIZE, SERVING_NZ, tiny_separator, tiny_unet

    for name, module in (
        ("segmentation", savedmodel.segmentation_module(tiny_unet(), SERVING_LOAD_SIZE, SERVING_NZ, seed=3)),
        ("separation", savedmodel.separation_module(tiny_separator(), SERVING_NZ, seed=5)),
    ):
        savedmodel.publish(module, base, name, module.check)
    config.write_for_export_base(base)


def _start_server(base: str) -> tuple:
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.serve", f"--model_config_file={base}/models.config",
         "--port=0", "--rest_api_port=0", "--read_timeout_s=2", "--verbosity=-3"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    lines = [process.stdout.readline() for _ in range(3)]
    rest = lines[1].split("http://")[1].split("/")[0]
    return process, rest, lines[2].split()[1]


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _png(seed: int, size: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _raw_rest(address: str, request: bytes) -> int:
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method="POST")
        try:
            response.begin()
            response.read()
            return response.status
        except (ConnectionError, http.client.RemoteDisconnected):
            return 0


def _post(body: bytes, path: str = "/v1/models/segmentation:predict") -> bytes:
    return b"POST %s HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)


def _calls(rest: str, grpc_address: str) -> dict:
    """{kind: a function making one request and returning whether it went as expected}."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tf_factorgan.serving import client as serving_client
    from tf_factorgan.serving.wire import ServingError

    rest_client = serving_client.RestClient(rest)
    grpc_client = serving_client.GrpcClient(grpc_address)
    channel = grpc.insecure_channel(grpc_address)
    garbage = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    png = _png(0, 64)
    audio = (0.1 * np.random.default_rng(0).standard_normal((8000, 2))).astype(np.float32)
    huge_png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + (16000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    rng = random.Random(0)

    def refused(call, code):
        try:
            call()
        except ServingError as error:
            return error.code == code
        return False

    def grpc_garbage():
        try:
            garbage(rng.randbytes(200), timeout=30)
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.INVALID_ARGUMENT
        return False

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def grpc_refused(request, code):
        try:
            stub.Predict(request, timeout=30)
        except grpc.RpcError as error:
            return error.code() == code
        return False

    string_fill = predict_pb2.PredictRequest()  # 1 KB: 1M strings of 1000 bytes
    string_fill.model_spec.name, string_fill.model_spec.signature_name = "segmentation", "predict_bytes"
    string_fill.inputs["images"].CopyFrom(tf.make_tensor_proto(b"x" * 1000, shape=[1_000_000]))
    rate_one = predict_pb2.PredictRequest()  # 4 KB: 1000 samples at 1 Hz
    rate_one.model_spec.name = "separation"
    rate_one.inputs["waveform"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 1000), np.float32)))
    rate_one.inputs["sample_rate"].CopyFrom(tf.make_tensor_proto(np.array(1, np.int32)))
    uint8_300 = predict_pb2.PredictRequest()
    uint8_300.model_spec.name, uint8_300.model_spec.signature_name = "segmentation", "predict_uint8"
    uint8_300.inputs["images"].CopyFrom(tf.make_tensor_proto(300, shape=[1, 1, 1, 3], dtype=tf.int32))
    uint8_300.inputs["images"].dtype = tf.uint8.as_datatype_enum
    long_song = predict_pb2.PredictRequest()  # 60 s of stereo 44.1 kHz, cancelled 0.3 s in
    long_song.model_spec.name = "separation"
    long_song.inputs["waveform"].CopyFrom(tf.make_tensor_proto(np.full((1, 44100 * 60, 2), 0.01, np.float32)))
    long_song.inputs["sample_rate"].CopyFrom(tf.make_tensor_proto(np.array(44100, np.int32)))

    def cancelled_song():
        call = stub.Predict.future(long_song, timeout=120)
        time.sleep(0.3)
        return call.cancel()

    digits = b"9" * 5000

    return {
        "REST segment 64x64 PNG": lambda: len(serving_client.segment_image(rest_client, "segmentation", png)) > 0,
        "gRPC segment 64x64 PNG": lambda: len(serving_client.segment_image(grpc_client, "segmentation", png)) > 0,
        "REST separate 1 s stereo": lambda: serving_client.separate_audio(rest_client, "separation", audio, 8000)["vocals"].shape == audio.shape,
        "gRPC separate 1 s stereo": lambda: serving_client.separate_audio(grpc_client, "separation", audio, 8000)["vocals"].shape == audio.shape,
        "REST malformed JSON": lambda: _raw_rest(rest, _post(b'{"inputs": [1, 2')) == 400,
        "REST deep nesting": lambda: _raw_rest(rest, _post(b"[" * 5000 + b"]" * 5000)) == 400,
        "REST huge image header": lambda: refused(lambda: serving_client.segment_image(rest_client, "segmentation", huge_png), "RESOURCE_EXHAUSTED"),
        "REST other method": lambda: _raw_rest(rest, b"DELETE /v1/models/segmentation HTTP/1.1\r\n\r\n") == 400,
        "gRPC garbage": grpc_garbage,
        "gRPC huge declared shape": lambda: _declared_shape_refused(grpc_address),
        "gRPC 1 KB string fill": lambda: grpc_refused(string_fill, grpc.StatusCode.RESOURCE_EXHAUSTED),
        "gRPC sample_rate 1": lambda: grpc_refused(rate_one, grpc.StatusCode.INVALID_ARGUMENT),
        "gRPC uint8 value 300": lambda: grpc_refused(uint8_300, grpc.StatusCode.INVALID_ARGUMENT),
        "gRPC cancelled 60 s song": cancelled_song,
        "REST 5000-digit length": lambda: _raw_rest(rest, b"POST /v1/models/segmentation:predict HTTP/1.1\r\nContent-Length: " + digits + b"\r\n\r\n{}") == 413,
        "REST 5000-digit version": lambda: _raw_rest(rest, b"GET /v1/models/segmentation/versions/" + digits + b" HTTP/1.1\r\n\r\n") == 400,
    }


def _declared_shape_refused(grpc_address: str) -> bool:
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "segmentation"
    tensor = request.inputs["images"]
    tensor.dtype = 1  # DT_FLOAT
    for size in (1, 8000, 8000, 3):
        tensor.tensor_shape.dim.add().size = size
    with grpc.insecure_channel(grpc_address) as channel:
        try:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.INVALID_ARGUMENT
    return False


class _SlowClients:
    """`count` connections that each send a byte a second (half their headers, half a
    1000-byte body after whole headers), reconnecting when the server cuts them; counts
    the cuts and how long each connection lived."""

    def __init__(self, address: str, count: int):
        host, port = address.split(":")
        self._address = (host, int(port))
        self._count = count
        self._stop = threading.Event()
        self.lifetimes = []  # seconds from connecting to being cut
        self.refused = 0  # connections that could not be opened
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _open(self, index: int):
        try:
            sock = socket.create_connection(self._address, timeout=5)
        except OSError:
            self.refused += 1
            return None
        if index % 2:
            sock.sendall(b"POST /v1/models/segmentation:predict HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{")
        else:
            sock.sendall(b"GET /v1/models/segmentation HTTP/1.1\r\nX-Slow: ")
        sock.setblocking(False)
        return sock, time.monotonic()

    def _run(self):
        open_ = {index: self._open(index) for index in range(self._count)}
        while not self._stop.wait(1.0):
            for index, entry in open_.items():
                if entry is None:
                    open_[index] = self._open(index)
                    continue
                sock, opened = entry
                try:
                    sock.send(b"a")
                    sock.recv(4096)  # an answer (400 for a body cut short) or b"" at close
                except BlockingIOError:
                    continue
                except OSError:  # reset
                    pass
                self.lifetimes.append(time.monotonic() - opened)
                sock.close()
                open_[index] = self._open(index)
        for entry in open_.values():
            if entry is not None:
                entry[0].close()


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as base:
        _export(base)
        process, rest, grpc_address = _start_server(base)
        try:
            calls = _calls(rest, grpc_address)
            with _SlowClients(rest, FLAGS.slow_clients) as slow:
                _soak(process.pid, calls)
            if FLAGS.slow_clients:
                lifetimes = np.array(slow.lifetimes)
                print(
                    f"{FLAGS.slow_clients} slow clients: {len(lifetimes)} connections cut by the server, "
                    f"after {np.percentile(lifetimes, 50):.1f} s (p50) / {lifetimes.max():.1f} s (max) "
                    f"of trickling; {slow.refused} could not connect"
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def _soak(pid: int, calls: dict) -> None:
    kinds = list(calls)
    plan = [kinds[i % len(kinds)] for i in range(FLAGS.requests)]
    random.Random(1).shuffle(plan)
    latencies = {kind: [] for kind in kinds}
    failures = []

    def one(kind):
        started = time.perf_counter()
        ok = calls[kind]()
        return kind, ok, time.perf_counter() - started

    print(f"server RSS at start: {_rss_mib(pid):.0f} MiB")
    for kind in kinds:  # the first calls trace the graphs for their shapes (seconds each)
        calls[kind]()
    print(f"server RSS after one call of each kind: {_rss_mib(pid):.0f} MiB")
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(FLAGS.concurrency) as pool:
        for done, (kind, ok, seconds) in enumerate(pool.map(one, plan), 1):
            latencies[kind].append(seconds)
            if not ok:
                failures.append(kind)
            if done % (FLAGS.requests // 10) == 0:
                print(f"  {done:5d} requests, {time.perf_counter() - started:6.1f} s, server RSS {_rss_mib(pid):.0f} MiB")
    print(f"{FLAGS.requests} requests in {time.perf_counter() - started:.1f} s, {len(failures)} unexpected answers")
    print(f"{'kind':28s} {'count':>5s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for kind in kinds:
        values = np.array(latencies[kind]) * 1000
        print(f"{kind:28s} {len(values):5d} {np.percentile(values, 50):8.1f} {np.percentile(values, 99):8.1f}")
    for name, chosen in (("normal (the valid kinds)", VALID), ("all", kinds)):
        values = np.concatenate([np.array(latencies[kind]) for kind in chosen]) * 1000
        print(f"{name:28s} {len(values):5d} {np.percentile(values, 50):8.1f} {np.percentile(values, 99):8.1f}")
    if failures:
        print("unexpected answers:", {kind: failures.count(kind) for kind in set(failures)})


if __name__ == "__main__":
    app.run(main)
