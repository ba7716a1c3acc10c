"""The compute precision of the networks: float32, or bfloat16 where the hardware
computes it natively.

`--precision=auto` (the default) chooses bfloat16 compute where the device that
trains has native bfloat16 arithmetic, float32 elsewhere:
- a GPU of compute capability 8.0 or later (Ampere, Hopper, ...), when TensorFlow
  sees one (it then computes there);
- else the CPU, when its flags list AVX512_BF16 or AMX_BF16 (x86) or BF16 (Arm).
Without native support, bfloat16 is emulated and slower than float32, so auto keeps
float32 there. Auto also keeps float32 for experiments whose networks are too small
for bfloat16 to pay (Paired MNIST's and the arrays' dense layers of 128 units: on an
AVX512_BF16 CPU a GAN update took 30 % more CPU time in bfloat16, a FactorGAN update 1 %
more; their settings say so with `pays=False`). `bfloat16` and `float32` force one or the other.

bfloat16 compute is Keras' "mixed_bfloat16" policy: variables, losses and the
networks' outputs stay float32 (the layers cast their inputs and weights), and
bfloat16 has float32's exponent range, so no loss scaling is needed. The quality
check behind the default: docs/benchmarks_and_tests.md, "Precision and PyTorch".
"""

import contextlib
import functools
import os
from typing import Iterator

import keras
import tensorflow as tf

AUTO, FLOAT32, BFLOAT16 = "auto", "float32", "bfloat16"
PRECISIONS = (AUTO, FLOAT32, BFLOAT16)
# The Keras dtype policy of each compute precision.
POLICIES = {FLOAT32: "float32", BFLOAT16: "mixed_bfloat16"}
# CPU flags (as /proc/cpuinfo lists them) of native bfloat16 arithmetic.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# GPUs compute bfloat16 natively from this compute capability (Ampere) on.
GPU_BF16_CAPABILITY = (8, 0)


def cpu_bf16_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The bfloat16 flags of `cpuinfo` (a /proc/cpuinfo text file), in
    CPU_BF16_FLAGS' order; () where there is none or the file cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ()
    flags = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        # x86 lists "flags", Arm "Features".
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return tuple(flag for flag in CPU_BF16_FLAGS if flag in flags)


def gpu_bf16(gpu_capabilities: list[tuple[int, int]]) -> bool:
    """Whether the first GPU (compute capability (major, minor)) has native bfloat16."""
    return bool(gpu_capabilities) and tuple(gpu_capabilities[0]) >= GPU_BF16_CAPABILITY


def _gpu_capabilities() -> list[tuple[int, int]]:
    return [tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
            for gpu in tf.config.list_physical_devices("GPU")]


def choose(precision: str, gpu_capabilities: list[tuple[int, int]],
           cpu_flags: tuple[str, ...], pays: bool = True) -> tuple[str, str]:
    """(compute precision, why) for the setting `precision` (one of PRECISIONS) on a
    machine with these GPUs (compute capabilities; the first one computes) and CPU
    bfloat16 flags, for networks where bfloat16 `pays` (or not: auto keeps float32).
    `why` is a few words for the run's start line."""
    if precision != AUTO:
        return precision, "as set"
    if not pays:
        return FLOAT32, "auto: bfloat16 does not pay for this experiment's small networks"
    if gpu_capabilities:
        major, minor = gpu_capabilities[0]
        native = gpu_bf16(gpu_capabilities)
        return (BFLOAT16 if native else FLOAT32), (
            f"auto: GPU compute capability {major}.{minor}"
            f"{'' if native else ' has no native bfloat16'}")
    if cpu_flags:
        return BFLOAT16, f"auto: the CPU has {', '.join(f.upper() for f in cpu_flags)}"
    return FLOAT32, "auto: the CPU has no native bfloat16"


@functools.lru_cache(maxsize=None)
def resolve(precision: str, pays: bool = True) -> tuple[str, str]:
    """(compute precision, why) of the setting `precision` on this machine, for
    networks where bfloat16 `pays` (`choose`).
    TF_FACTORGAN_CPU_FLAGS, when set, stands in for the CPU's flags (space-separated;
    tests use it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    override = os.environ.get("TF_FACTORGAN_CPU_FLAGS")
    cpu_flags = (tuple(f for f in CPU_BF16_FLAGS if f in override.split())
                 if override is not None else cpu_bf16_flags())
    return choose(precision, _gpu_capabilities(), cpu_flags, pays)


def compute_precision(precision: str, pays: bool = True) -> str:
    """float32 or bfloat16: what the setting `precision` computes in here (`resolve`)."""
    return resolve(precision, pays)[0]


@contextlib.contextmanager
def policy(precision: str, pays: bool = True) -> Iterator[str]:
    """Networks built inside compute in `precision`'s compute precision (`resolve`;
    yielded); the global Keras policy is restored afterwards."""
    used = compute_precision(precision, pays)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(POLICIES[used])
    try:
        yield used
    finally:
        keras.mixed_precision.set_global_policy(previous)
