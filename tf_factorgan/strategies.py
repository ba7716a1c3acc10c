"""Choosing a `tf.distribute` strategy by name."""

import tensorflow as tf

from tf_factorgan.config import SettingError, ref

STRATEGY_NAMES = ("auto", "default", "mirrored", "multi_worker")


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy called `name`.

    auto: `mirrored` over all GPUs when any is visible, else `default`.
    default: no distribution (one replica on the default device).
    mirrored: one replica per visible GPU (or the CPU), synchronous all-reduce.
    multi_worker: MultiWorkerMirroredStrategy; the cluster comes from `TF_CONFIG`.
    """
    if name not in STRATEGY_NAMES:
        raise SettingError(f"{{strategy}} must be one of {', '.join(STRATEGY_NAMES)}, got {name!r}")
    if name == "auto":
        name = "mirrored" if tf.config.list_physical_devices("GPU") else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and results (worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def per_replica_batch_size(strategy: tf.distribute.Strategy, global_batch_size: int) -> int:
    """global batch / replicas, failing clearly when it does not divide."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise SettingError(
            f"{{batch_size}}={global_batch_size} is not divisible by the "
            f"{replicas} replicas of the {type(strategy).__name__}; choose a multiple "
            f"of {replicas}"
        )
    return global_batch_size // replicas


def configure_cpu_threads(intra_op_threads: int, inter_op_threads: int) -> None:
    """Sets TensorFlow's thread pools; must run before TensorFlow executes any op.

    0 keeps TensorFlow's default. Small networks gain from intra_op_threads=1: a
    FactorGAN round updates several independent discriminators, and running them side
    by side on separate cores beats splitting each small matmul across all cores
    (about 1.45x more generator updates/s for Paired MNIST on 2 cores).
    """
    for name, value in (("intra_op_threads", intra_op_threads), ("inter_op_threads", inter_op_threads)):
        if value < 0:
            raise SettingError(f"{ref(name)} must be >= 0 (0 = TensorFlow's default), got {value}")
    try:
        if intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        if inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError as error:
        raise RuntimeError(
            "thread pools must be configured before TensorFlow runs its first op"
        ) from error


def describe_devices(strategy: tf.distribute.Strategy) -> str:
    """Where `strategy` computes, for a person: "CPU", "GPU (NVIDIA H100 80GB HBM3)",
    "2 GPUs (...)", with ", N workers" under multi_worker."""
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: TensorFlow's first GPU, else the CPU
        devices = [device.name for device in tf.config.list_logical_devices("GPU")[:1]]
    kinds = [tf.DeviceSpec.from_string(device).device_type or "CPU" for device in devices]
    kind = "GPU" if "GPU" in kinds else kinds[0] if kinds else "CPU"
    count = kinds.count(kind)
    text = f"{count} {kind}s" if count > 1 else kind
    if kind == "GPU":
        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        name = details.get("device_name")
        text += f" ({name})" if name else ""
    workers = getattr(strategy.extended, "_num_workers", 1)
    return text + (f", {workers} workers" if workers > 1 else "")
