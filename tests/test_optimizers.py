import keras
import numpy as np
import tensorflow as tf

from tf_factorgan.optimizers import FusedAdam


def test_fused_adam_matches_keras_adam_over_several_steps():
    init = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    variables = [keras.Variable(init), keras.Variable(init)]
    optimizers = [keras.optimizers.Adam(1e-2, beta_1=0.5, beta_2=0.999), FusedAdam(1e-2, beta_1=0.5, beta_2=0.999)]
    for opt, var in zip(optimizers, variables):
        opt.build([var])
    for step in range(5):
        grad = tf.constant(np.random.default_rng(step).normal(size=(5, 3)).astype(np.float32))
        for opt, var in zip(optimizers, variables):
            opt.apply_gradients([(grad, var)])
    np.testing.assert_allclose(variables[0].numpy(), variables[1].numpy(), rtol=1e-5, atol=1e-7)
    assert not np.allclose(variables[1].numpy(), init)
    assert int(optimizers[1].iterations.numpy()) == 5


def test_fused_adam_works_inside_a_mirrored_step(two_replicas):
    strategy = two_replicas
    with strategy.scope():
        var = keras.Variable(np.ones((2, 2), np.float32))
        opt = FusedAdam(0.1)
        opt.build([var])

    @tf.function
    def step():
        def replica_fn():
            replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32)
            opt.apply_gradients([(tf.fill([2, 2], replica + 1.0), var)])
        strategy.run(replica_fn)

    step()
    # Gradients are summed over replicas (1 + 2 = 3 > 0): the first Adam step moves
    # every weight by -lr, on both replicas alike.
    for value in strategy.experimental_local_results(var.value):
        np.testing.assert_allclose(value.numpy(), np.full((2, 2), 0.9), rtol=1e-5)
