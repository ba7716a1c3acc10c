"""Serving latency and throughput: segmentation of one 256x256 image and separation of
10 s of stereo 44.1 kHz audio, called in-process (the loaded SavedModel), over REST
and over gRPC on loopback (the development server).

  python -m benchmarks.serving_latency [--requests=20] [--concurrency=4]

Freshly initialised generators of the experiments' default sizes (U-Net ngf 32 at
load size 128; masking U-Net ngf 32) are exported exactly as `export.export` does.
Latency is p50 / p99 over --requests sequential calls after two warm-up calls;
throughput is requests per second with --concurrency clients sending --requests
requests together. The REST client sends the image to predict_bytes (b64) and the
audio as JSON numbers; gRPC sends TensorProtos.
"""

import concurrent.futures
import io
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from PIL import Image

from tf_factorgan.experiments import audio_separation, image2image
from tf_factorgan.export import savedmodel
from tf_factorgan.logs import quiet_info_logs
from tf_factorgan.models.masking import MaskingSeparator
from tf_factorgan.models.unet import UNet
from tf_factorgan.serving import client as serving_client
from tf_factorgan.serving import config
from tf_factorgan.serving.dev_server import DevServer
from tf_factorgan.serving.repository import ModelRepository

flags.DEFINE_integer("requests", 20, "Requests per measurement.", lower_bound=2)
flags.DEFINE_integer("concurrency", 4, "Concurrent clients in the throughput run.", lower_bound=1)
flags.DEFINE_integer("image_size", 256, "Side of the segmented image.")
flags.DEFINE_float("audio_seconds", 10.0, "Length of the separated audio.")
flags.DEFINE_integer("audio_rate", 44100, "Sample rate of the separated audio.")
FLAGS = flags.FLAGS
NZ = 50


def _export(base: str) -> None:
    defaults = image2image.Image2ImageConfig()
    generator = UNet(3, ngf=defaults.ngf)
    generator(tf.zeros([1, defaults.load_size, defaults.load_size, 3]), tf.zeros([1, NZ]))
    separator = MaskingSeparator(ngf=audio_separation.AudioSeparationConfig().ngf)
    separator(tf.zeros([1, *audio_separation.SAMPLE_SHAPE[:2], 1]), tf.zeros([1, NZ]))
    for name, module in (
        ("segmentation", savedmodel.segmentation_module(generator, defaults.load_size, NZ, 0)),
        ("separation", savedmodel.separation_module(separator, NZ, 0, audio_separation.SETTINGS)),
    ):
        savedmodel.publish(module, base, name, module.check)


def _inputs():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (FLAGS.image_size, FLAGS.image_size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    samples = int(FLAGS.audio_seconds * FLAGS.audio_rate)
    audio = (0.1 * rng.standard_normal((samples, 2))).astype(np.float32)
    return buffer.getvalue(), audio


def _calls(base: str, server: DevServer, jpeg: bytes, audio: np.ndarray) -> dict:
    """{(task, mode): a function making one request}."""
    loaded = {name: tf.saved_model.load(os.path.join(base, name, "1")) for name in ("segmentation", "separation")}
    segment = loaded["segmentation"].signatures["predict_bytes"]
    separate = loaded["separation"].signatures["serving_default"]
    clients = {
        "REST": serving_client.RestClient(f"localhost:{server.rest_port}"),
        "gRPC": serving_client.GrpcClient(f"localhost:{server.grpc_port}"),
    }
    calls = {
        ("segmentation", "in-process"): lambda: segment(images=tf.constant([jpeg]))["label_png_bytes"].numpy(),
        ("separation", "in-process"): lambda: separate(
            waveform=tf.constant(audio[None]), sample_rate=tf.constant(FLAGS.audio_rate)
        )["vocals"].numpy(),
    }
    for mode, client in clients.items():
        calls[("segmentation", mode)] = lambda c=client: serving_client.segment_image(c, "segmentation", jpeg)
        calls[("separation", mode)] = lambda c=client: serving_client.separate_audio(
            c, "separation", audio, FLAGS.audio_rate
        )
    return calls


def _measure(call) -> dict:
    for _ in range(2):
        call()
    latencies = []
    for _ in range(FLAGS.requests):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(FLAGS.concurrency) as pool:
        list(pool.map(lambda _: call(), range(FLAGS.requests)))
    return {
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "requests_per_s": FLAGS.requests / (time.perf_counter() - start),
    }


def main(argv):
    del argv
    quiet_info_logs()
    jpeg, audio = _inputs()
    with tempfile.TemporaryDirectory() as base:
        _export(base)
        repository = ModelRepository(config.for_models(config.model_folders(base)))
        with DevServer(repository, rest_port=0, grpc_port=0) as server:
            results = {key: _measure(call) for key, call in _calls(base, server, jpeg, audio).items()}
    print(
        f"\n{FLAGS.image_size}x{FLAGS.image_size} JPEG; {FLAGS.audio_seconds:g} s stereo at "
        f"{FLAGS.audio_rate} Hz; {FLAGS.requests} requests, throughput with "
        f"{FLAGS.concurrency} clients; {os.cpu_count()} CPU cores\n"
    )
    print(f"{'task':<14}{'mode':<12}{'p50 ms':>10}{'p99 ms':>10}{'requests/s':>12}")
    for (task, mode), r in results.items():
        print(f"{task:<14}{mode:<12}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['requests_per_s']:>12.2f}")


if __name__ == "__main__":
    app.run(main)
