"""Timing of a Trainer's compiled step, shared by the throughput benchmarks."""

import dataclasses
import time

import tensorflow as tf

from tf_factorgan import trainer


@dataclasses.dataclass(frozen=True)
class Throughput:
    """updates_per_second: wall clock. cpu_ms_per_update: the process's CPU time (all
    threads) per update, which a shared machine's other load disturbs far less."""

    updates_per_second: float
    cpu_ms_per_update: float


def throughput(loop: trainer.Trainer, steps: int, steps_per_call: int) -> Throughput:
    """Generator updates per second (and CPU time per update) over about `steps`
    updates on the loop's real input pipeline, after one untimed call that traces and
    warms up."""
    strategy = loop.strategy
    iterator = iter(strategy.distribute_datasets_from_function(lambda c: loop.dataset_fn(c, 0)))

    def run(n):
        return loop.gan_step.train_step(iterator, tf.constant(n, tf.int64), loop.per_replica_batch, loop.step)

    float(run(steps_per_call)["generator/loss"])
    calls = max(1, steps // steps_per_call)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(calls):
        metrics = run(steps_per_call)
    float(metrics["generator/loss"])  # waits for the last call to finish
    updates = calls * steps_per_call
    return Throughput(updates / (time.perf_counter() - start),
                      1000 * (time.process_time() - cpu_start) / updates)


def updates_per_second(loop: trainer.Trainer, steps: int, steps_per_call: int) -> float:
    """Wall-clock generator updates per second (see `throughput`)."""
    return throughput(loop, steps, steps_per_call).updates_per_second
