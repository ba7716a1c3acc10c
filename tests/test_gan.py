import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import GLOBAL_BATCH, SplitInvariantRandomness
from tf_factorgan import gan, trainer
from tf_factorgan.experiments import paired_mnist
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.mlp import MLPDiscriminator
from tf_factorgan.noise import Randomness


def _config(variant=Variant.FACTORGAN, **kw):
    return paired_mnist.PairedMnistConfig(
        variant=variant,
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


def test_batch_not_divisible_by_replicas_is_refused(digits, two_replicas):
    config = paired_mnist.PairedMnistConfig(batch_size=25, out_path="/x")
    data = paired_mnist.build_data(config, *digits)
    with pytest.raises(ValueError, match="batch_size=25 is not divisible by the 2 replicas"):
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


class _ConditionalDense(keras.Model):
    """(part 0 [B, 4], noise [B, nz]) -> part 1 [B, 4] in (0, 1)."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(4, activation="sigmoid")

    def call(self, condition, noise, training=False):
        return self.dense(tf.concat([condition, noise], -1))


def _conditional_step(variant):
    config = gan.GanConfig(variant=variant, batch_size=8, nz=3, conditional=True)
    partition = Partition((4, 4))
    strategy = tf.distribute.get_strategy()
    models = gan.build_models(config, partition, (8,), _ConditionalDense,
                              lambda name: MLPDiscriminator(hidden_units=8, name=name))
    return trainer.DistributedStep(gan.FactorGanUpdates(models, config, partition, Randomness(0)), strategy)


@pytest.mark.parametrize("variant, streams", [
    (Variant.FACTORGAN,
     {"joint": None, "marginal_0": 0, "marginal_1": 1}),
    (Variant.GAN, {"joint": None}),
])
def test_conditional_step_completes_its_inputs(variant, streams):
    step = _conditional_step(variant)
    assert step.updates.data_streams() == streams
    expected = ["marginal_1", "p_dependency", "q_dependency"] if variant.is_factorised else ["joint"]
    assert list(step.models.discriminators) == expected
    rng = np.random.default_rng(0)
    batch = {key: tf.constant(rng.random([8, 8 if part is None else 4]), tf.float32)
             for key, part in streams.items()}
    fake = step.updates.generate(batch, 8).numpy()
    # Part 0 of a fake is the real input: every input for FactorGAN, the paired ones for the GAN.
    inputs = batch["marginal_0"] if variant.is_factorised else batch["joint"][:, :4]
    np.testing.assert_array_equal(fake[:, :4], inputs.numpy())
    before = [w.numpy().copy() for net in step.models.networks() for w in net.trainable_weights]
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    metrics = step.train_step(iter(dataset), tf.constant(2, tf.int64), 8, tf.Variable(0, dtype=tf.int64))
    after = [w.numpy() for net in step.models.networks() for w in net.trainable_weights]
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
    assert np.isfinite(float(metrics["generator/loss"]))
    translated = step.updates.translate(rng.random([5, 4]), seed=1, batch_size=2)
    assert translated.shape == (5, 4) and 0 < translated.min() and translated.max() < 1
    with pytest.raises(ValueError, match="use translate"):
        step.updates.sample(3)


def test_translate_is_reproducible_per_seed():
    step = _conditional_step(Variant.FACTORGAN)
    inputs = np.random.default_rng(1).random([6, 4]).astype(np.float32)
    translate = step.updates.translate
    np.testing.assert_allclose(translate(inputs, seed=2, batch_size=4),
                               translate(inputs, seed=2, batch_size=6), rtol=1e-6)
    assert not np.array_equal(translate(inputs, seed=2), translate(inputs, seed=3))


@pytest.mark.parametrize("variant, conditional, discriminators", [
    (Variant.FACTORGAN, False, ["marginal_0", "marginal_1", "p_dependency", "q_dependency"]),
    (Variant.FACTORGAN, True, ["marginal_1", "p_dependency", "q_dependency"]),
    (Variant.FACTORGAN_NO_CP, True, ["marginal_1", "q_dependency"]),
    (Variant.GAN, True, ["joint"])])
def test_conditional_is_one_setting_beside_the_variant(variant, conditional, discriminators):
    # A conditional generator's input part 0 gets no marginal discriminator.
    config = gan.GanConfig(variant=variant, conditional=conditional)
    assert list(gan.discriminator_inputs(config, Partition((4, 4)))) == discriminators


def test_hidden_condition_is_not_shown_to_the_joint_discriminators():
    class _TwoParts(keras.Model):  # (mixture [B, 2], noise) -> two sources [B, 3 + 3]
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(6, activation="sigmoid")

        def call(self, condition, noise, training=False):
            return self.dense(tf.concat([condition, noise], -1))

    config = gan.GanConfig(variant=Variant.FACTORGAN, batch_size=8, nz=3,
                           conditional=True, condition_visible=False)
    partition = Partition((2, 3, 3))
    assert gan.discriminator_inputs(config, partition) == {
        "marginal_1": 3, "marginal_2": 3, "p_dependency": 6, "q_dependency": 6}
    models = gan.build_models(config, partition, (8,), _TwoParts,
                              lambda name: MLPDiscriminator(hidden_units=8, name=name))
    step = trainer.DistributedStep(gan.FactorGanUpdates(models, config, partition, Randomness(0)),
                                   tf.distribute.get_strategy())
    rng = np.random.default_rng(0)
    batch = {key: tf.constant(rng.random([8, 8 if part is None else partition.sizes[part]]), tf.float32)
             for key, part in step.updates.data_streams().items()}
    metrics = step.train_step(iter(tf.data.Dataset.from_tensors(batch).repeat()),
                              tf.constant(1, tf.int64), 8, tf.Variable(0, dtype=tf.int64))
    assert np.isfinite(float(metrics["discriminator/q_dependency/loss"]))
    assert models.discriminators["p_dependency"].hidden_1.layer.kernel.shape[0] == 6


class CountingRandomness(Randomness):
    """Records the noise rows a step draws, and the generator's batch sizes."""

    def __init__(self, seed):
        super().__init__(seed)
        self.noise_rows = []

    def noise(self, batch_size, nz):
        self.noise_rows.append(batch_size)
        return super().noise(batch_size, nz)


@pytest.mark.parametrize("variant, fake_batches, expected", [
    (Variant.FACTORGAN, "per_discriminator", 3),  # marginal_0, marginal_1, q_dependency
    (Variant.FACTORGAN, "shared", 1),
    (Variant.FACTORGAN_NO_CP, "per_discriminator", 3),
    (Variant.GAN, "per_discriminator", 1),
])
def test_each_discriminator_draws_its_own_fakes(digits, variant, fake_batches, expected, monkeypatch):
    config = _config(variant, fake_batches=fake_batches)
    data = paired_mnist.build_data(config, *digits)
    loop = paired_mnist.build_trainer(config, data, tf.distribute.get_strategy(), CountingRandomness)
    step = loop.gan_step
    batch = next(iter(loop.dataset_fn(tf.distribute.InputContext(), 0)))
    seen = []
    update = gan.update_discriminator
    monkeypatch.setattr(gan, "update_discriminator",
                        lambda name, model, opt, real, fake, n: (seen.append(fake.numpy()),
                                                                 update(name, model, opt, real, fake, n))[1])
    step.updates.discriminator_round(batch, GLOBAL_BATCH)  # eagerly
    assert step.randomness.noise_rows == [expected * GLOBAL_BATCH]  # one generator call
    fakes_of = {name: fake for name, fake in zip(step.models.discriminators, seen)}
    if variant is Variant.GAN:
        return
    # Marginal D_i sees part i of its fake batch, D_Q the whole one.
    lower_0 = fakes_of["marginal_1"]
    upper_q = fakes_of["q_dependency"][:, :784]
    assert np.array_equal(fakes_of["marginal_0"], upper_q) == (fake_batches == "shared")
    assert lower_0.shape == (GLOBAL_BATCH, 784)


def test_network_settings_reach_the_built_models(digits):
    from tf_factorgan.models import spectral

    def built(**settings):
        config = _config(**settings)
        return paired_mnist.build_trainer(
            config, paired_mnist.build_data(config, *digits), tf.distribute.get_strategy()
        ).gan_step.models

    models = built()  # defaults: Keras' choices, which the ablation chose
    assert isinstance(models.discriminators["marginal_0"].logit, spectral.ProjectedSpectralNorm)
    np.testing.assert_array_equal(models.generator.out.bias.numpy(), 0)  # Keras' zeros
    assert all(o.epsilon == pytest.approx(1e-7) for o in models.optimizers())
    # The original code's choices.
    models = built(spectral_norm="reparametrize", init="torch", adam_epsilon=1e-8)
    assert isinstance(models.discriminators["p_dependency"].hidden_1, spectral.ReparametrizedSpectralNorm)
    bias = models.generator.out.bias.numpy()
    assert np.abs(bias).max() > 0 and np.abs(bias).max() <= 1 / np.sqrt(128)  # torch init
    assert models.generator_optimizer.epsilon == pytest.approx(1e-8)
    with pytest.raises(ValueError, match="fake_batches"):
        _config(fake_batches="some").gan_config()
    with pytest.raises(ValueError, match="adam_epsilon"):
        _config(adam_epsilon=0.0).gan_config()


def test_discrete_fakes_are_one_hot_with_the_probabilities_gradient():
    class _Classes(keras.Model):  # (part 0 [B, 4], noise) -> class probabilities [B, 4]
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4, activation="softmax")

        def call(self, condition, noise, training=False):
            return self.dense(tf.concat([condition, noise], -1))

    partition = Partition((4, 4))
    config = gan.GanConfig(variant=Variant.FACTORGAN, batch_size=8, nz=3, conditional=True,
                           discrete_fakes=True)
    models = gan.build_models(config, partition, (8,), _Classes,
                              lambda name: MLPDiscriminator(hidden_units=8, name=name))
    updates = gan.FactorGanUpdates(models, config, partition, Randomness(0))
    rng = np.random.default_rng(0)
    batch = {key: tf.constant(rng.random([8, 8 if part is None else 4]), tf.float32)
             for key, part in updates.data_streams().items()}
    weights = tf.constant(rng.standard_normal([8, 4]), tf.float32)
    with tf.GradientTape() as tape:
        shown = updates.generate(batch, 8)[:, 4:]
        loss = tf.reduce_sum(shown * weights)
    # The discriminators see one class per row, as in a real one-hot map ...
    np.testing.assert_array_equal(np.sort(shown.numpy(), axis=1), np.tile([0.0, 0.0, 0.0, 1.0], (8, 1)))
    # ... and the generator still gets the probabilities' gradient.
    gradient = tape.gradient(loss, models.generator.dense.kernel)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0
