import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import gan
from tf_factorgan.experiments import paired_mnist
from tf_factorgan.factorisation import Variant

GLOBAL_BATCH = 24


class SplitInvariantRandomness(gan.Randomness):
    """Noise and permutations that do not depend on how the batch is split.

    Replica r of R takes rows r*B/R.. of one fixed noise table, and permutations swap
    neighbouring samples, so R replicas see exactly what one replica sees.
    """

    def __init__(self, seed):
        super().__init__(seed)
        self.table = tf.random.stateless_uniform([GLOBAL_BATCH, 50], [seed, 1], -1.0, 1.0)

    def noise(self, batch_size, nz):
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.slice(self.table, [replica * batch_size, 0], [batch_size, nz])

    def permutations(self, batch_size, count):
        swap = tf.reshape(tf.reverse(tf.reshape(tf.range(batch_size), [-1, 2]), [1]), [-1])
        return [swap] * count


def _config(variant=Variant.FACTORGAN, **kw):
    return paired_mnist.PairedMnistConfig(
        factorgan=variant is not Variant.GAN,
        use_real_dep_disc=variant is Variant.FACTORGAN,
        num_joint_samples=96,
        batch_size=GLOBAL_BATCH,
        out_path="/nonexistent",
        **kw,
    )


def _all_weights(models):
    return [w.numpy().copy() for net in models.networks() for w in net.weights]


def _run_one_step(loop):
    iterator = iter(loop.strategy.distribute_datasets_from_function(lambda c: loop.dataset_fn(c, 0)))
    return loop.gan_step.train_step(iterator, tf.constant(1, tf.int64), loop.per_replica_batch, loop.step)


@pytest.mark.parametrize("variant", [Variant.FACTORGAN, Variant.FACTORGAN_NO_CP, Variant.GAN])
def test_one_step_updates_every_network(digits, variant):
    config = _config(variant)
    data = paired_mnist.build_data(config, *digits)
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy())
    expected = {Variant.FACTORGAN: ["marginal_0", "marginal_1", "p_dependency", "q_dependency"],
                Variant.FACTORGAN_NO_CP: ["marginal_0", "marginal_1", "q_dependency"],
                Variant.GAN: ["joint"]}[variant]
    assert list(loop.gan_step.models.discriminators) == expected
    nets = {"generator": loop.gan_step.models.generator, **loop.gan_step.models.discriminators}
    before = {name: [w.numpy().copy() for w in net.trainable_weights] for name, net in nets.items()}
    metrics = _run_one_step(loop)
    for name, net in nets.items():
        for old, new in zip(before[name], net.trainable_weights):
            assert not np.allclose(old, new.numpy()), f"{name} did not change"
    assert int(loop.step.numpy()) == 1
    assert 0.0 <= float(metrics["generator/mean_sigmoid_combined_logit"]) <= 1.0
    for name in expected:
        assert np.isfinite(float(metrics[f"discriminator/{name}/loss"]))


def test_two_replicas_make_the_same_update_as_one(digits, two_replicas):
    config = _config()
    data = paired_mnist.build_data(config, *digits)
    mirrored = two_replicas
    assert mirrored.num_replicas_in_sync == 2
    loops = [
        paired_mnist.build_trainer(config, data, strategy, SplitInvariantRandomness)
        for strategy in (tf.distribute.get_strategy(), mirrored)
    ]
    single, double = (loop.gan_step.models for loop in loops)
    for a, b in zip(single.networks(), double.networks()):
        b.set_weights(a.get_weights())
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in _all_weights(single)]),
                                  np.concatenate([w.ravel() for w in _all_weights(double)]))
    metrics = [_run_one_step(loop) for loop in loops]
    for w1, w2 in zip(_all_weights(single), _all_weights(double)):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-6)
    for key in metrics[0]:
        np.testing.assert_allclose(float(metrics[0][key]), float(metrics[1][key]), rtol=1e-4, atol=1e-6)


def test_every_replica_draws_its_own_noise_and_permutations(two_replicas):
    mirrored = two_replicas
    with mirrored.scope():
        randomness = gan.Randomness(7)

    @tf.function
    def draw():
        return mirrored.run(lambda: (randomness.noise(4, 3), randomness.permutations(16, 1)[0]))

    noise, perm = draw()
    n0, n1 = (t.numpy() for t in mirrored.experimental_local_results(noise))
    p0, p1 = (t.numpy() for t in mirrored.experimental_local_results(perm))
    assert not np.allclose(n0, n1) and not np.array_equal(p0, p1)
    assert n0.min() >= -1 and n0.max() <= 1
    np.testing.assert_array_equal(np.sort(p0), np.arange(16))


def test_batch_not_divisible_by_replicas_is_refused(digits, two_replicas):
    config = paired_mnist.PairedMnistConfig(batch_size=25, out_path="/x")
    data = paired_mnist.build_data(config, *digits)
    with pytest.raises(ValueError, match="--batch_size=25 is not divisible by the 2 replicas"):
        paired_mnist.build_trainer(config, data, two_replicas)


def test_xla_compiled_step_trains(digits):
    config = _config(jit_compile=True)
    loop = paired_mnist.build_trainer(config, paired_mnist.build_data(config, *digits),
                                      tf.distribute.get_strategy())
    before = loop.gan_step.models.generator.trainable_weights[0].numpy().copy()
    metrics = _run_one_step(loop)
    assert np.isfinite(float(metrics["generator/loss"]))
    assert not np.allclose(before, loop.gan_step.models.generator.trainable_weights[0].numpy())


def test_seed_fixes_the_initial_weights(digits):
    def initial(seed):
        config = _config(seed=seed)
        loop = paired_mnist.build_trainer(config, paired_mnist.build_data(config, *digits),
                                          tf.distribute.get_strategy())
        return np.concatenate([w.ravel() for w in _all_weights(loop.gan_step.models)])

    np.testing.assert_array_equal(initial(5), initial(5))
    assert not np.allclose(initial(5), initial(6))


def test_conditional_variant_is_refused_until_supported():
    with pytest.raises(NotImplementedError, match="conditional FactorGAN"):
        gan.build_models(gan.GanConfig(variant=Variant.CONDITIONAL_FACTORGAN),
                         paired_mnist.PARTITION, (1568,), None, None)
