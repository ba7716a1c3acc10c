"""Side by side: one update of our segmentation FactorGAN against the same networks in
PyTorch, and the conv limit of both frameworks on this CPU (issue 26).

  .venv/bin/python -m benchmarks.side_by_side [--torch_python=../torchenv/bin/python]
      [--sizes=128,64] [--precisions=float32,bfloat16] [--threads=1,2] [--rounds=3]
      [--reps=5] [--out=results/benchmarks/side_by_side]

(the PyTorch environment: benchmarks/requirements-torch.txt says how to make it).

What is timed, per configuration (image size, precision, threads):
  update      one conditional FactorGAN update of the segmentation experiment
              (image2image, photo -> RGB label map, variant factorgan, batch 25, 2
              discriminator rounds and 1 generator update, --spectral_norm=project, our
              default). Ours is the real training step: `image2image.build_trainer` on
              random in-memory images through the training input pipeline, one
              `train_step` call (steps_per_call=1) per update, as
              `benchmarks.image_throughput` builds it. PyTorch's is
              `benchmarks.torch_networks.FactorGanUpdate`: the same layers, shapes,
              passes and spectral-norm power iterations.
  conv limit  a 3x3 convolution 64 -> 64 channels at 128x128, batch 25, forward and
              backward (input and weight gradients): about the best rate this CPU
              gives a convolution of the networks' kind, in either framework.

Each (configuration, framework) runs in a worker process of its own: ours with this
Python (it never imports torch), PyTorch's with --torch_python (it never imports
tensorflow or tf_factorgan). A worker sets its threads (ours: intra-op = threads,
inter-op = --tf_inter_op; PyTorch: torch.set_num_threads(threads), one inter-op
thread), builds, warms up until two consecutive calls agree within 10 % (at least
--warmup calls: the first timed call after a fixed short warm-up was often 1.5-2.5x
slower), times --reps calls one by one and prints one JSON line. Within each round the
two frameworks run back to back for each configuration, in alternating order from
round to round, so a drifting machine load reaches both. The report gives medians over
all reps of all rounds. PyTorch runs in NCHW or channels_last, whichever its first
round measures faster (the report says which); bfloat16 is torch.autocast with float32
weights, as Keras' mixed_bfloat16 is float32 variables with bfloat16 compute. Our input
pipeline (tf.data) prepares batches beside the step, as in training; PyTorch's update
draws its batches from memory itself. The report's "cores busy" (CPU time / wall time)
shows what each framework really used.

Run it on an otherwise idle machine: PyTorch's OpenMP threads lose far more than
TensorFlow's thread pool when other processes share the cores (on a 2-core machine
busy with two trainings, PyTorch's 2-thread update ran 3-8x slower than its 1-thread
one, ours was not slowed so).

FLOPs are counted from the layer shapes (`update_flops`), for convolution and dense
layers only (BatchNorm, activations, upsampling, noise draws, Adam and the spectral
norm's power iterations are left out):
  forward       2 x multiply-adds (per example: out_h x out_w x k x k x C_in x C_out);
  backward      another forward's worth for the input gradient, unless the layer reads
                the network's input and that needs no gradient (data, noise), and
                another for the weight gradient where the weights are trained in that
                pass: 2 x forward for a trained inner layer, 1 x for a trained first
                layer, 1 x for a discriminator in the generator update (input gradient
                only), 0 for a pass without gradient.
One update: 2 rounds x [G forward (B rows, no gradient) + D_1, D_P, D_Q trained on 2B
rows] + G trained on B rows + D_1, D_P, D_Q forward and input-gradient on B rows.

This counts 763.7 GFLOP per update at 128x128 and 173.3 at 64x64. The issue's figures,
711.9 and 160.4, are this count without the U-Net's per-pixel noise maps
(--noise_stages=0 gives 711.8 and 160.3): our segmentation default concatenates 32
noise-map channels to the inputs of the last three decoder stages (noise_stages=3),
51.9 (13.0) GFLOP more per update at 128 (64): the first convolutions of those stages
see 32 more input channels in each of the update's 3 U-Net forward passes and 1 backward
pass (the backward costing 2 forward passes).
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional

# The segmentation experiment's settings that fix the work (image2image defaults).
BATCH = 25
DISC_ITER = 2
NZ = 50
NGF = 32
DISC_FILTERS = 32
NOISE_CHANNELS = 2
NOISE_MAP_CHANNELS = 32
DEFAULT_NOISE_STAGES = 3
IMAGE_CHANNELS = 3  # photos and RGB label maps
# The conv limit's convolution.
CONV_SIZE, CONV_CHANNELS, CONV_KERNEL = 128, 64, 3
PRECISIONS = ("float32", "bfloat16")
# Our discriminators see a label map (marginal_1) or a (photo, label map) pair.
DISCRIMINATOR_CHANNELS = {"marginal_1": IMAGE_CHANNELS, "p_dependency": 2 * IMAGE_CHANNELS,
                          "q_dependency": 2 * IMAGE_CHANNELS}
OURS, PYTORCH = "ours", "pytorch"
UPDATE, CONV = "update", "conv"
# A worker's stdout line that holds its result.
RESULT_MARK = "SIDE_BY_SIDE_RESULT "
TORCH_FORMATS = ("contiguous", "channels_last")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Calls of each PyTorch layout that decide between them (a median, after the warm-up).
FORMAT_PROBE_CALLS = 3
MAKE_TORCH_ENV = ("python3 -m venv ../torchenv && ../torchenv/bin/pip install -r "
                  "benchmarks/requirements-torch.txt")


# --- FLOPs and parameters from the layer shapes ------------------------------------


@dataclasses.dataclass(frozen=True)
class Layer:
    """A convolution or dense layer as applied to one example: out_size x out_size
    positions, each a kernel x kernel x in_channels -> out_channels product (a dense
    layer: out_size = kernel = 1). reads_input: it reads the network's own input (its
    input gradient is needed only when that input needs one)."""

    in_channels: int
    out_channels: int
    kernel: int = 1
    out_size: int = 1
    bias: bool = True
    batchnorm: bool = False
    spectral: bool = False
    reads_input: bool = False

    @property
    def macs(self) -> int:
        """Multiply-adds per example."""
        return self.out_size ** 2 * self.kernel ** 2 * self.in_channels * self.out_channels

    @property
    def trainable(self) -> int:
        """Trained values: the kernel, the bias, BatchNorm's scale and offset."""
        return (self.kernel ** 2 * self.in_channels * self.out_channels
                + self.out_channels * (self.bias + 2 * self.batchnorm))

    @property
    def state(self) -> int:
        """Untrained values: BatchNorm's moving mean and variance, the spectral vector."""
        return self.out_channels * (2 * self.batchnorm + self.spectral)


def unet_layers(size: int, noise_stages: int = DEFAULT_NOISE_STAGES, in_channels: int = IMAGE_CHANNELS,
                output_channels: int = IMAGE_CHANNELS, ngf: int = NGF, nz: int = NZ,
                noise_channels: int = NOISE_CHANNELS,
                noise_map_channels: int = NOISE_MAP_CHANNELS) -> list[Layer]:
    """The U-Net generator's layers (models/unet.py) at size x size."""
    layers = []

    def double_conv(c_in: int, channels: int, at: int, first: bool = False) -> None:
        layers.append(Layer(c_in, channels, 3, at, bias=False, batchnorm=True, reads_input=first))
        layers.append(Layer(channels, channels, 3, at, bias=False, batchnorm=True))

    double_conv(in_channels, ngf, size, first=True)
    for stage, (c_in, channels) in enumerate(((ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf),
                                               (8 * ngf, 8 * ngf)), start=1):
        double_conv(c_in, channels, size // 2 ** stage)
    bottleneck = size // 16
    layers.append(Layer(nz, noise_channels * bottleneck ** 2, reads_input=True))
    # Decoder stage k (up_3 .. up_0) at size / 2**k: upsampled + skip (+ noise maps).
    first_noisy = 4 - noise_stages
    previous = 8 * ngf + noise_channels
    for index, (skip, channels) in enumerate(((8 * ngf, 4 * ngf), (4 * ngf, 2 * ngf),
                                              (2 * ngf, ngf), (ngf, ngf))):
        maps = noise_map_channels if index >= first_noisy else 0
        double_conv(previous + skip + maps, channels, size // 2 ** (3 - index))
        previous = channels
    layers.append(Layer(ngf, output_channels, 1, size))
    return layers


def discriminator_layers(size: int, in_channels: int, filters: int = DISC_FILTERS) -> list[Layer]:
    """A ConvDiscriminator's layers (models/conv.py) at size x size, all spectrally
    normalised: max(1, floor(log2(size)) - 3) 4x4 stride-2 convolutions, a bias-free
    dense logit."""
    num_layers = max(1, size.bit_length() - 1 - 3)
    layers, channels, at = [], in_channels, size
    for i in range(num_layers):
        at //= 2
        layers.append(Layer(channels, filters * 2 ** i, 4, at, spectral=True, reads_input=i == 0))
        channels = filters * 2 ** i
    layers.append(Layer(channels * at * at, 1, bias=False, spectral=True))
    return layers


def parameters(layers: list[Layer]) -> dict:
    """{"trainable": ..., "state": ...} values of a network."""
    return {"trainable": sum(l.trainable for l in layers), "state": sum(l.state for l in layers)}


def pass_flops(layers: list[Layer], rows: int, train_weights: bool = False,
               input_gradient: bool = False, backward: bool = True) -> int:
    """FLOPs of one pass of `rows` examples through `layers` (the module's rule):
    forward; with `backward`, input gradients (a layer reading the network's input only
    when `input_gradient`) and, with `train_weights`, weight gradients."""
    total = 0
    for layer in layers:
        forward = 2 * layer.macs * rows
        total += forward
        if backward:
            total += forward * ((input_gradient or not layer.reads_input) + train_weights)
    return total


def network_layers(size: int, noise_stages: int = DEFAULT_NOISE_STAGES) -> dict:
    """name -> layers of every network of the update ("generator", then the
    discriminators)."""
    return {"generator": unet_layers(size, noise_stages),
            **{name: discriminator_layers(size, channels) for name, channels in DISCRIMINATOR_CHANNELS.items()}}


def update_parameters(size: int, noise_stages: int = DEFAULT_NOISE_STAGES) -> dict:
    """name -> `parameters` of every network of the update."""
    return {name: parameters(layers) for name, layers in network_layers(size, noise_stages).items()}


def update_flops(size: int, noise_stages: int = DEFAULT_NOISE_STAGES, batch: int = BATCH,
                 disc_iter: int = DISC_ITER) -> dict:
    """FLOPs of one update: {"discriminator_rounds", "generator_update", "total"}."""
    networks = network_layers(size, noise_stages)
    generator = networks.pop("generator")
    round_flops = pass_flops(generator, batch, backward=False) + sum(
        pass_flops(d, 2 * batch, train_weights=True) for d in networks.values())
    generator_flops = pass_flops(generator, batch, train_weights=True) + sum(
        pass_flops(d, batch, input_gradient=True) for d in networks.values())
    rounds = disc_iter * round_flops
    return {"discriminator_rounds": rounds, "generator_update": generator_flops,
            "total": rounds + generator_flops}


def conv_limit_flops(batch: int = BATCH, size: int = CONV_SIZE, channels: int = CONV_CHANNELS) -> int:
    """FLOPs of the conv limit's pass: forward, input gradient and weight gradient."""
    return pass_flops([Layer(channels, channels, CONV_KERNEL, size, bias=False)], batch,
                      train_weights=True, input_gradient=True)


def parameter_mismatch(ours: dict, pytorch: dict, counted: dict) -> Optional[str]:
    """None when every network has the same trainable and state counts in our worker's
    networks, PyTorch's and the layer shapes the FLOPs are counted from; otherwise one
    line naming the first difference."""
    for name in counted:
        for kind in ("trainable", "state"):
            values = {"ours": ours.get(name, {}).get(kind), "PyTorch": pytorch.get(name, {}).get(kind),
                      "counted": counted[name][kind]}
            if len(set(values.values())) > 1:
                listed = ", ".join(f"{v:,} {k}" if v is not None else f"none {k}" for k, v in values.items())
                return f"{name} {kind} parameters differ: {listed}"
    return None


# --- Timing, shared by the workers --------------------------------------------------


def timed(call: Callable[[], object]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of all the process's threads) of one call (it
    returns when its work is done). CPU / wall is the number of cores it kept busy."""
    start, cpu_start = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - start, time.process_time() - cpu_start


def warm_up(call: Callable[[], object], minimum: int, maximum: int = 12,
            tolerance: float = 0.1) -> list[float]:
    """Untimed calls until two consecutive ones agree within `tolerance` (at least
    `minimum`, at most `maximum` calls); returns their wall-clock seconds."""
    seconds = []
    while len(seconds) < maximum:
        seconds.append(timed(call)[0])
        if len(seconds) >= max(minimum, 2) and abs(seconds[-1] - seconds[-2]) <= tolerance * seconds[-2]:
            break
    return seconds


def time_reps(call: Callable[[], object], reps: int) -> dict:
    """{"seconds": wall-clock seconds of each of `reps` calls, "cpu_seconds": their CPU
    seconds}."""
    wall, cpu = zip(*(timed(call) for _ in range(reps)))
    return {"seconds": list(wall), "cpu_seconds": list(cpu)}


# --- Our worker (TensorFlow; never imports torch) -----------------------------------


def _tf_runtime(threads: int, inter_op: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tf_factorgan import strategies

    strategies.configure_cpu_threads(threads, inter_op)
    return tf


def _keras_counts(model) -> dict:
    import numpy as np

    count = lambda variables: int(sum(np.prod(v.shape) for v in variables))  # noqa: E731
    return {"trainable": count(model.trainable_variables), "state": count(model.non_trainable_variables)}


def ours_update(args) -> dict:
    """Our training step (see the module docstring) timed per update."""
    tf = _tf_runtime(args.threads, args.tf_inter_op)
    import keras

    from benchmarks.image_throughput import random_data
    from tf_factorgan import strategies
    from tf_factorgan.experiments import image2image

    config = image2image.Image2ImageConfig(
        variant="factorgan", batch_size=BATCH, disc_iter=DISC_ITER, steps_per_call=1,
        precision=args.precision, load_size=str(args.size), noise_stages=args.noise_stages,
        intra_op_threads=args.threads, inter_op_threads=args.tf_inter_op,
        strategy="default", out_path="/nonexistent")
    loop = image2image.build_trainer(config, random_data(args.size, (IMAGE_CHANNELS, IMAGE_CHANNELS),
                                                         args.num_images), strategies.make_strategy("default"))
    # As timing.throughput: the loop's own input pipeline, one update per call.
    iterator = iter(loop.strategy.distribute_datasets_from_function(lambda c: loop.dataset_fn(c, 0)))
    one = tf.constant(1, tf.int64)

    def update():
        return float(loop.gan_step.train_step(iterator, one, loop.per_replica_batch, loop.step)["generator/loss"])

    models = loop.gan_step.models
    warmup = warm_up(update, args.warmup)
    return {**time_reps(update, args.reps), "warmup_seconds": warmup,
            "parameters": {"generator": _keras_counts(models.generator),
                           **{name: _keras_counts(d) for name, d in models.discriminators.items()}},
            "compute_dtype": models.generator.down_0.conv_1.compute_dtype,
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__}}


def ours_conv(args) -> dict:
    """The conv limit in TensorFlow: NHWC activations in the compute dtype, a float32
    kernel cast to it (as a mixed_bfloat16 layer), forward and both gradients."""
    tf = _tf_runtime(args.threads, args.tf_inter_op)
    dtype = tf.bfloat16 if args.precision == "bfloat16" else tf.float32
    shape = [BATCH, CONV_SIZE, CONV_SIZE, CONV_CHANNELS]
    inputs = tf.cast(tf.random.uniform(shape), dtype)
    output_gradient = tf.cast(tf.random.uniform(shape), dtype)
    kernel = tf.Variable(tf.random.normal([CONV_KERNEL, CONV_KERNEL, CONV_CHANNELS, CONV_CHANNELS], stddev=0.05))

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, tf.cast(kernel, dtype), 1, "SAME")
        dx, dw = tape.gradient(y, [x, kernel], output_gradients=output_gradient)
        # All three returned: an unused one would be pruned from the graph.
        return y, dx, dw

    call = lambda: forward_backward(inputs)[2].numpy()  # noqa: E731
    warmup = warm_up(call, args.warmup)
    return {**time_reps(call, args.reps), "warmup_seconds": warmup,
            "versions": {"tensorflow": tf.__version__}}


# --- PyTorch's worker (never imports tensorflow or tf_factorgan) --------------------


def _torch_runtime(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    return torch


def _torch_timings(torch, make: Callable, memory_format: str, args) -> dict:
    """Warm-up and timed reps of `make(torch memory format)()` in `memory_format`, or
    with "auto" in the faster of NCHW and channels_last (the median of
    FORMAT_PROBE_CALLS calls each, after its warm-up)."""
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    candidates = TORCH_FORMATS if memory_format == "auto" else (memory_format,)
    probes, warmups, chosen, best = {}, {}, None, None
    for name in candidates:
        call = make(formats[name])
        warmups[name] = warm_up(call, args.warmup)
        if len(candidates) == 1:
            chosen, best = name, call
            break
        probes[name] = statistics.median(time_reps(call, FORMAT_PROBE_CALLS)["seconds"])
        if best is None or probes[name] < probes[chosen]:
            chosen, best = name, call
        del call
    return {**time_reps(best, args.reps), "warmup_seconds": warmups[chosen],
            "memory_format": chosen, "format_probe_seconds": probes}


def pytorch_update(args) -> dict:
    torch = _torch_runtime(args.threads)
    from benchmarks import torch_networks

    counts = {}

    def make(memory_format):
        update = torch_networks.FactorGanUpdate(args.size, args.precision, memory_format, batch=BATCH,
                                                nz=NZ, noise_stages=args.noise_stages, disc_iter=DISC_ITER)
        counts.update(update.parameter_counts())
        return update

    result = _torch_timings(torch, make, args.torch_format, args)
    return {**result, "parameters": counts, "versions": {"torch": torch.__version__}}


def pytorch_conv(args) -> dict:
    torch = _torch_runtime(args.threads)
    from benchmarks import torch_networks

    make = lambda memory_format: torch_networks.ConvLimit(  # noqa: E731
        args.precision, memory_format, BATCH, CONV_SIZE, CONV_CHANNELS)
    return {**_torch_timings(torch, make, args.torch_format, args), "versions": {"torch": torch.__version__}}


WORKERS = {(OURS, UPDATE): ours_update, (OURS, CONV): ours_conv,
           (PYTORCH, UPDATE): pytorch_update, (PYTORCH, CONV): pytorch_conv}


def run_worker(args) -> None:
    """Worker mode: one measurement, printed as one JSON line after RESULT_MARK."""
    import numpy

    result = WORKERS[args.worker, args.what](args)
    flops = update_flops(args.size, args.noise_stages)["total"] if args.what == UPDATE else conv_limit_flops()
    result.update(framework=args.worker, what=args.what, size=args.size, precision=args.precision,
                  threads=args.threads, flops=flops)
    result["versions"].update(python=platform.python_version(), numpy=numpy.__version__)
    print(RESULT_MARK + json.dumps(result), flush=True)


# --- The driver ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One row: what is timed (UPDATE at `size`, or CONV), precision and threads."""

    what: str
    size: int
    precision: str
    threads: int

    @property
    def label(self) -> str:
        if self.what == CONV:
            return f"conv limit {self.precision}"
        return f"factorgan {self.size}x{self.size} {self.precision}"

    @property
    def key(self) -> str:
        return f"{self.what}/{self.size}/{self.precision}/{self.threads}"


def configurations(sizes, precisions, threads) -> list[Configuration]:
    """The updates (size-major), then the conv limits."""
    updates = [Configuration(UPDATE, s, p, t) for s in sizes for p in precisions for t in threads]
    return updates + [Configuration(CONV, CONV_SIZE, p, t) for p in precisions for t in threads]


class WorkerFailed(Exception):
    pass


def measure(args, framework: str, configuration: Configuration, torch_format: str) -> dict:
    """Runs one worker process and returns its result (WorkerFailed: one line why)."""
    python = sys.executable if framework == OURS else args.torch_python
    command = [python, "-m", "benchmarks.side_by_side", f"--worker={framework}",
               f"--what={configuration.what}", f"--size={configuration.size}",
               f"--precision={configuration.precision}", f"--threads={configuration.threads}",
               f"--reps={args.reps}", f"--warmup={args.warmup}", f"--noise_stages={args.noise_stages}",
               f"--tf_inter_op={args.tf_inter_op}", f"--torch_format={torch_format}",
               f"--num_images={args.num_images}"]
    environment = {**os.environ, "OMP_NUM_THREADS": str(configuration.threads),
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
    lines = [l for l in process.stdout.splitlines() if l.startswith(RESULT_MARK)]
    if process.returncode or not lines:
        tail = (process.stderr.strip().splitlines() or ["no output"])[-1]
        raise WorkerFailed(f"{framework} worker for {configuration.label}, threads {configuration.threads} "
                           f"failed (exit {process.returncode}): {tail}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def median_seconds(results: list[dict]) -> Optional[float]:
    """The median over every rep of every round's result (None without any)."""
    seconds = [s for r in results for s in r["seconds"]]
    return statistics.median(seconds) if seconds else None


def cores_busy(results: list[dict]) -> Optional[float]:
    """CPU seconds / wall-clock seconds over every timed call: the cores a framework
    kept busy (ours: its input pipeline's threads included)."""
    wall = sum(s for r in results for s in r["seconds"])
    return sum(s for r in results for s in r["cpu_seconds"]) / wall if wall else None


@dataclasses.dataclass
class Row:
    """One configuration's summary; `refused` says why it is not reported."""

    configuration: Configuration
    ours_seconds: Optional[float]
    pytorch_seconds: Optional[float]
    ours_cores: Optional[float]
    pytorch_cores: Optional[float]
    flops: int
    pytorch_format: str
    refused: Optional[str] = None

    def rate(self, seconds: Optional[float]) -> Optional[float]:
        """GFLOP/s at `seconds` per pass."""
        return self.flops / seconds / 1e9 if seconds else None


def summarise(configuration: Configuration, ours: list[dict], pytorch: list[dict], counted: dict) -> Row:
    """The row of one configuration from its workers' results over the rounds."""
    flops = (update_flops(configuration.size, counted["noise_stages"])["total"]
             if configuration.what == UPDATE else conv_limit_flops())
    formats = sorted({r["memory_format"] for r in pytorch})
    row = Row(configuration, median_seconds(ours), median_seconds(pytorch), cores_busy(ours),
              cores_busy(pytorch), flops, "/".join(formats))
    if not ours or not pytorch:
        row.refused = "a framework has no measurement (its worker failed)"
    elif configuration.what == UPDATE:
        problems = [parameter_mismatch(o["parameters"], p["parameters"], counted["parameters"][configuration.size])
                    for o, p in zip(ours, pytorch)]
        problems.append(next((f"ours computed in {r['compute_dtype']}, not {configuration.precision}"
                              for r in ours if r["compute_dtype"] != configuration.precision), None))
        if {r["flops"] for r in ours + pytorch} != {flops}:
            problems.append("the workers counted different FLOPs")
        row.refused = next((p for p in problems if p), None)
    return row


def _cell(value: Optional[float], fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def conv_limits(rows: list[Row]) -> dict:
    """(precision, threads) -> the conv limit in GFLOP/s: the faster framework's rate."""
    limits = {}
    for row in rows:
        c = row.configuration
        if c.what == CONV and not row.refused:
            limits[c.precision, c.threads] = max(row.rate(row.ours_seconds), row.rate(row.pytorch_seconds))
    return limits


UPDATE_COLUMNS = ("update", "threads", "ours s", "PyTorch s", "ours/PyTorch", "ours GFLOP/s",
                  "PyTorch GFLOP/s", "ours % of conv limit", "PyTorch % of conv limit",
                  "cores busy ours / PyTorch", "PyTorch layout")
CONV_COLUMNS = ("conv limit: precision", "threads", "ours s", "PyTorch s", "ours/PyTorch", "ours GFLOP/s",
                "PyTorch GFLOP/s", "cores busy ours / PyTorch", "PyTorch layout")


def _table_row(cells: list, columns: tuple) -> str:
    return "| " + " | ".join(list(map(str, cells)) + [""] * (len(columns) - len(cells))) + " |"


def _timing_cells(row: Row) -> list:
    """ours s | PyTorch s | ours/PyTorch | ours GFLOP/s | PyTorch GFLOP/s."""
    return [f"{row.ours_seconds:.3f}", f"{row.pytorch_seconds:.3f}",
            f"{row.ours_seconds / row.pytorch_seconds:.2f}", f"{row.rate(row.ours_seconds):.1f}",
            f"{row.rate(row.pytorch_seconds):.1f}"]


def _table(rows: list[Row], what: str, columns: tuple, limits: dict) -> list[str]:
    lines = [_table_row(columns, columns), "|" + "---|" * len(columns)]
    for row in rows:
        c = row.configuration
        if c.what != what:
            continue
        name = c.label if what == UPDATE else c.precision
        if row.refused:
            lines.append(_table_row([name, c.threads, f"not reported: {row.refused}"], columns))
            continue
        cells = [name, c.threads, *_timing_cells(row)]
        if what == UPDATE:
            limit = limits.get((c.precision, c.threads))
            cells += [_cell(limit and 100 * row.rate(row.ours_seconds) / limit, ".0f"),
                      _cell(limit and 100 * row.rate(row.pytorch_seconds) / limit, ".0f")]
        cells += [f"{_cell(row.ours_cores, '.1f')} / {_cell(row.pytorch_cores, '.1f')}", row.pytorch_format]
        lines.append(_table_row(cells, columns))
    return lines


def markdown(rows: list[Row], header: dict) -> str:
    """The report: the update rows, then the conv limit rows."""
    flops = ", ".join(f"{v / 1e9:.1f} GFLOP per update at {s}x{s}" for s, v in header["flops"].items())
    lines = ["# Side by side: our FactorGAN update and PyTorch's (issue 26)", "",
             f"{header['date']}, {header['cpu']} ({header['cores']} cores), {header['versions_line']}.", "",
             f"`{header['command']}`", "",
             f"Medians over {header['rounds']} rounds x {header['reps']} timed calls per framework and "
             "row, after a warm-up until two calls agree within 10 %. FLOPs counted from the layer "
             f"shapes (benchmarks/side_by_side.py): {flops} (noise_stages={header['noise_stages']}); "
             f"{conv_limit_flops() / 1e9:.1f} GFLOP per conv limit pass. The conv limit of a precision "
             "and thread count is the faster framework's rate on a 3x3 convolution 64 -> 64 at "
             "128x128, batch 25, forward and backward. Cores busy: CPU time / wall-clock time of the "
             "timed calls (ours includes its input pipeline's threads). ours/PyTorch below 1: ours "
             "is faster.", ""]
    lines += _table(rows, UPDATE, UPDATE_COLUMNS, conv_limits(rows))
    lines += [""] + _table(rows, CONV, CONV_COLUMNS, {})
    return "\n".join(lines) + "\n"


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions(results: list[dict]) -> dict:
    versions = {}
    for result in results:
        for name, version in result["versions"].items():
            key = f"{name} ({result['framework']})" if name in ("python", "numpy") else name
            versions[key] = version
    return versions


def drive(args) -> int:
    """Driver mode: every round, every configuration, both frameworks; the report."""
    # Absolute: the workers run in the repository root, whatever the caller's folder.
    args.torch_python = os.path.abspath(args.torch_python)
    problem = check_arguments(args) or torch_missing(args.torch_python)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    rows_of = configurations(args.sizes, args.precisions, args.threads)
    results = {c.key: {OURS: [], PYTORCH: []} for c in rows_of}
    torch_formats = {}  # a configuration's PyTorch layout, chosen in its first round
    for round_index in range(args.rounds):
        for index, configuration in enumerate(rows_of):
            order = (OURS, PYTORCH) if (round_index + index) % 2 == 0 else (PYTORCH, OURS)
            for framework in order:
                torch_format = torch_formats.get(configuration.key, args.torch_format)
                try:
                    result = measure(args, framework, configuration, torch_format)
                except WorkerFailed as error:
                    print(error, file=sys.stderr, flush=True)
                    continue
                results[configuration.key][framework].append(result)
                if framework == PYTORCH:
                    torch_formats[configuration.key] = result["memory_format"]
                layout = f" ({result['memory_format']})" if framework == PYTORCH else ""
                print(f"round {round_index + 1}/{args.rounds} {configuration.label}, threads "
                      f"{configuration.threads}, {framework}{layout}: median "
                      f"{statistics.median(result['seconds']):.3f} s "
                      f"(warm-up {', '.join(f'{s:.2f}' for s in result['warmup_seconds'])} s)", flush=True)
    counted = {"noise_stages": args.noise_stages,
               "parameters": {s: update_parameters(s, args.noise_stages) for s in args.sizes}}
    rows = [summarise(c, results[c.key][OURS], results[c.key][PYTORCH], counted) for c in rows_of]
    for row in rows:
        if row.refused:
            print(f"{row.configuration.label}, threads {row.configuration.threads}: not reported: "
                  f"{row.refused}", file=sys.stderr)
    all_results = [r for c in results.values() for f in c.values() for r in f]
    versions = _versions(all_results)
    header = {"command": " ".join([os.path.relpath(sys.executable, REPO_ROOT), "-m", "benchmarks.side_by_side",
                                   *sys.argv[1:]]),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "cpu": cpu_model(), "cores": os.cpu_count(), "rounds": args.rounds, "reps": args.reps,
              "noise_stages": args.noise_stages,
              "flops": {s: update_flops(s, args.noise_stages)["total"] for s in args.sizes},
              "versions": versions,
              "versions_line": ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".md", "w") as f:
        f.write(markdown(rows, header))
    report = {**{k: v for k, v in header.items() if k != "versions_line"},
              "flops_breakdown": {s: update_flops(s, args.noise_stages) for s in args.sizes},
              "conv_limit_flops": conv_limit_flops(), "parameters_counted": counted["parameters"],
              "rows": [{"what": r.configuration.what, "size": r.configuration.size,
                        "precision": r.configuration.precision, "threads": r.configuration.threads,
                        "ours_median_seconds": r.ours_seconds, "pytorch_median_seconds": r.pytorch_seconds,
                        "ours_cores_busy": r.ours_cores, "pytorch_cores_busy": r.pytorch_cores,
                        "flops": r.flops, "pytorch_layout": r.pytorch_format, "refused": r.refused}
                       for r in rows],
              "results": results}
    with open(args.out + ".json", "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}.md and {args.out}.json")
    return 0


def check_arguments(args) -> Optional[str]:
    """One line on what is wrong with the driver's arguments, or None."""
    if not (os.path.isfile(args.torch_python) and os.access(args.torch_python, os.X_OK)):
        return (f"--torch_python={args.torch_python} not found: create the PyTorch environment with "
                f"`{MAKE_TORCH_ENV}` (from the repository root) or point --torch_python at one")
    bad = [s for s in args.sizes if s < 16 or s % 16]
    if bad:
        return f"--sizes: every size must be a multiple of 16 (the U-Net's), got {bad}"
    bad = [p for p in args.precisions if p not in PRECISIONS]
    if bad:
        return f"--precisions: each one of {', '.join(PRECISIONS)}, got {bad}"
    if min(args.threads) < 1 or args.rounds < 1 or args.reps < 1 or args.warmup < 1:
        return "--threads, --rounds, --reps and --warmup must be >= 1"
    if not 0 <= args.noise_stages <= 4:
        return f"--noise_stages must lie in [0, 4], got {args.noise_stages}"
    return None


def torch_missing(torch_python: str) -> Optional[str]:
    """One line when `torch_python` cannot import torch, else None."""
    check = subprocess.run([torch_python, "-c", "import torch"], capture_output=True, text=True)
    if check.returncode == 0:
        return None
    return (f"--torch_python={torch_python} cannot import torch: install it with `{torch_python} -m pip "
            "install -r benchmarks/requirements-torch.txt` (from the repository root)")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.side_by_side",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch_python", default=os.path.join(os.path.dirname(REPO_ROOT), "torchenv", "bin",
                                                               "python"),
                        help="Python of the PyTorch environment (default: ../torchenv/bin/python).")
    parser.add_argument("--sizes", type=_int_list, default=[128, 64], help="Image sizes of the update.")
    parser.add_argument("--precisions", type=lambda t: [p for p in t.split(",") if p],
                        default=list(PRECISIONS), help="float32, bfloat16.")
    parser.add_argument("--threads", type=_int_list, default=[1, 2], help="Thread counts.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds over every configuration.")
    parser.add_argument("--reps", type=int, default=5, help="Timed calls per worker.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls at least, per worker.")
    parser.add_argument("--out", default="results/benchmarks/side_by_side",
                        help="Report path without extension (.md and .json are written).")
    parser.add_argument("--noise_stages", type=int, default=DEFAULT_NOISE_STAGES,
                        help="U-Net decoder stages with noise maps (the segmentation default: 3; "
                             "0 reproduces the issue's FLOP figures).")
    parser.add_argument("--tf_inter_op", type=int, default=1,
                        help="Our inter-op threads (0: TensorFlow's default, as the trainer "
                             "without --inter_op_threads).")
    parser.add_argument("--torch_format", choices=("auto", *TORCH_FORMATS), default="auto",
                        help="PyTorch's memory layout (auto: the faster in the first round).")
    parser.add_argument("--num_images", type=int, default=200, help="Random images in memory.")
    # Worker mode (the driver starts these).
    parser.add_argument("--worker", choices=(OURS, PYTORCH), help=argparse.SUPPRESS)
    parser.add_argument("--what", choices=(UPDATE, CONV), default=UPDATE, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=CONV_SIZE, help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    if args.worker:
        args.threads = args.threads[0]
        run_worker(args)
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
