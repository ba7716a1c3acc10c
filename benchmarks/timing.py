"""Timing of a Trainer's compiled step, shared by the throughput benchmarks."""

import time

import tensorflow as tf

from tf_factorgan import trainer


def updates_per_second(loop: trainer.Trainer, steps: int, steps_per_call: int) -> float:
    """Generator updates per second over about `steps` updates on the loop's real
    input pipeline, after one untimed call that traces and warms up."""
    strategy = loop.strategy
    iterator = iter(strategy.distribute_datasets_from_function(lambda c: loop.dataset_fn(c, 0)))

    def run(n):
        return loop.gan_step.train_step(iterator, tf.constant(n, tf.int64), loop.per_replica_batch, loop.step)

    float(run(steps_per_call)["generator/loss"])
    calls = max(1, steps // steps_per_call)
    start = time.perf_counter()
    for _ in range(calls):
        metrics = run(steps_per_call)
    float(metrics["generator/loss"])  # waits for the last call to finish
    return calls * steps_per_call / (time.perf_counter() - start)
