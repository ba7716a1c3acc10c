"""The Keras API: fit() makes the flag trainers' updates; callbacks, saving, export."""

import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import GLOBAL_BATCH, REPO_ROOT, SplitInvariantRandomness, scalars
from tf_factorgan import gan, keras_api, trainer
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models import specs
from tf_factorgan.models.mlp import MLPDiscriminator, MLPGenerator
from tf_factorgan.noise import Randomness, seeded_noise

PARTITION = Partition((3, 2))
NZ = 4


class ConditionalMLP(keras.Model):
    """(part 0 [B, 3], noise [B, nz]) -> part 1 [B, 2]."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="relu")
        self.out = keras.layers.Dense(2)

    def call(self, condition, noise, training=False):
        return self.out(self.hidden(tf.concat([condition, noise], -1)))


def _config(variant=Variant.FACTORGAN, conditional=False, **kw):
    settings = dict(batch_size=GLOBAL_BATCH, nz=NZ, lr=1e-3, disc_iter=2,
                    fake_batches=gan.PER_DISCRIMINATOR)
    return gan.GanConfig(variant=variant, conditional=conditional, **{**settings, **kw})


def _networks(config):
    """(generator, discriminator factory) of `config`, freshly constructed."""
    generator = ConditionalMLP() if config.conditional else MLPGenerator(5, 8, "linear")
    return generator, lambda name: MLPDiscriminator(hidden_units=8, name=name)


def _model(config, randomness=SplitInvariantRandomness, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras_api.FactorGAN(*_networks(config), PARTITION, config,
                                randomness_factory=randomness)
    model.compile()
    return model


def _flag_step(config, randomness=SplitInvariantRandomness):
    """The flag trainers' distributed step of `config` (default strategy)."""
    generator, make_discriminator = _networks(config)
    models = gan.build_models(config, PARTITION, (5,), lambda: generator, make_discriminator)
    updates = gan.FactorGanUpdates(models, config, PARTITION, randomness(0))
    return trainer.DistributedStep(updates, tf.distribute.get_strategy())


def _parts(seed=0):
    """(paired, unpaired): 40 whole samples, 100 / 70 parts alone, correlated parts."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(140, 3)).astype(np.float32)
    b = (a[:, :2] + 0.1 * rng.normal(size=(140, 2))).astype(np.float32)
    return [a[:40], b[:40]], [a[40:], b[70:]]


def _update_data(model, seed=0):
    """One element of `factorgan_dataset`: disc_iter round dicts of the global batch."""
    paired, unpaired = _parts(seed)
    return next(iter(keras_api.factorgan_dataset(model, paired, unpaired, seed=seed)))


def _state(models):
    """Every network weight, then every optimizer variable (Adam's step, moments)."""
    return ([w.numpy().copy() for n in models.networks() for w in n.weights]
            + [v.numpy().copy() for o in models.optimizers() for v in o.variables])


def _max_difference(state, other):
    assert [a.shape for a in state] == [b.shape for b in other]
    return max(float(np.max(np.abs(a - b))) for a, b in zip(state, other))


def _flag_update(step, rounds):
    """One generator update of the flag trainer's step on `rounds`; its metrics."""
    iterator = iter(tf.data.Dataset.from_tensor_slices(
        {k: tf.stack([r[k] for r in rounds]) for k in rounds[0]}))
    metrics = step.train_step(iterator, tf.constant(1, tf.int64), GLOBAL_BATCH,
                              tf.Variable(0, dtype=tf.int64))
    return {k: float(v) for k, v in metrics.items()}


@pytest.mark.parametrize("variant, conditional", [
    (Variant.FACTORGAN, False), (Variant.FACTORGAN_NO_CP, False), (Variant.GAN, False),
    (Variant.FACTORGAN, True)])
def test_fit_step_changes_every_weight_as_the_flag_trainer(variant, conditional):
    config = _config(variant, conditional)
    model = _model(config)
    keras.utils.set_random_seed(1)  # other initial weights: copied over below
    step = _flag_step(config)
    for mine, flags in zip(model.models.networks(), step.models.networks()):
        mine.set_weights(flags.get_weights())
    before = _state(model.models)
    assert _max_difference(before, _state(step.models)) == 0.0
    rounds = _update_data(model)

    history = model.fit(tf.data.Dataset.from_tensors(rounds), epochs=1, steps_per_epoch=1,
                        shuffle=False, verbose=0).history
    expected = _flag_update(step, rounds)

    after = _state(model.models)
    assert _max_difference(after, _state(step.models)) <= 1e-6  # every weight and Adam slot
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, after))
    assert changed >= len(before) * 0.9  # all but a few spectral-norm vectors
    assert model.steps == 1
    assert sorted(history) == sorted(expected)
    for name, value in expected.items():
        assert history[name][0] == pytest.approx(value, rel=1e-5, abs=1e-7), name


def test_two_replicas_fit_as_one_flag_trainer(two_replicas):
    config = _config()
    with two_replicas.scope():
        model = _model(config)
    assert model.distribute_strategy is two_replicas
    step = _flag_step(config)
    for mine, flags in zip(model.models.networks(), step.models.networks()):
        mine.set_weights(flags.get_weights())
    rounds = _update_data(_model(config))  # global batches
    assert rounds[0]["joint"].shape == (GLOBAL_BATCH, 5)
    # Keras splits each global batch across the replicas (12 rows each); each replica's
    # losses are divided by the global 24, so the update is the one-replica update.
    history = model.fit(tf.data.Dataset.from_tensors(rounds).repeat(), epochs=1,
                        steps_per_epoch=1, shuffle=False, verbose=0).history
    expected = _flag_update(step, rounds)
    assert _max_difference(_state(model.models), _state(step.models)) <= 1e-6
    for name, value in expected.items():  # logged as the global batch's averages
        assert history[name][0] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_factorgan_dataset_feeds_each_replica_its_share(two_replicas):
    with two_replicas.scope():
        model = _model(_config(), Randomness)
    paired, unpaired = _parts()
    dataset = keras_api.factorgan_dataset(model, paired, unpaired)
    element = next(iter(dataset))
    assert len(element) == 2  # disc_iter rounds
    shapes = {k: [tuple(t.shape) for t in two_replicas.experimental_local_results(v)]
              for k, v in element[0].items()}
    assert shapes == {"joint": [(12, 5)] * 2, "marginal_0": [(12, 3)] * 2,
                      "marginal_1": [(12, 2)] * 2}
    history = model.fit(dataset, epochs=2, steps_per_epoch=3, verbose=0).history
    assert model.steps == 6
    assert all(np.isfinite(v).all() for v in history.values())
    # The replicas drew different noise: their fakes differ.
    fakes = two_replicas.run(lambda: model.updates.generate({}, 4))
    first, second = two_replicas.experimental_local_results(fakes)
    assert not np.allclose(first.numpy(), second.numpy())


def test_config_jit_compile_compiles_the_fit_step_with_xla():
    model = _model(_config(jit_compile=True), Randomness)
    assert model.jit_compile
    before = model.generator.weights[0].numpy().copy()
    paired, unpaired = _parts()
    history = model.fit(keras_api.factorgan_dataset(model, paired, unpaired), epochs=1,
                        steps_per_epoch=2, verbose=0).history
    assert np.isfinite(history["generator/loss"][0]) and model.steps == 2
    assert not np.allclose(before, model.generator.weights[0].numpy())


def test_weights_file_restores_every_network_optimizer_and_the_noise(tmp_path):
    config = _config()
    model = _model(config, Randomness)
    paired, unpaired = _parts()
    model.fit(keras_api.factorgan_dataset(model, paired, unpaired), epochs=1, steps_per_epoch=3,
              verbose=0)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    other = _model(config, Randomness, seed=5)
    assert _max_difference(_state(model.models), _state(other.models)) > 0.01
    other.load_weights(path)
    assert _max_difference(_state(model.models), _state(other.models)) == 0.0
    assert other.steps == 3
    np.testing.assert_array_equal(other.randomness.generator.state.numpy(),
                                  model.randomness.generator.state.numpy())
    np.testing.assert_array_equal(other.randomness.noise(3, NZ), model.randomness.noise(3, NZ))


class _Interrupt(keras.callbacks.Callback):
    """Stops fit() with an error as epoch `epoch` begins (a killed run)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_backup_and_restore_resumes_an_interrupted_fit_exactly(tmp_path):
    config = _config()
    data = tf.data.Dataset.from_tensors(_update_data(_model(config))).repeat()
    fit = dict(epochs=4, steps_per_epoch=2, shuffle=False, verbose=0)
    uninterrupted = _model(config, Randomness)
    uninterrupted.fit(data, **fit)

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    interrupted = _model(config, Randomness)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(data, callbacks=[backup, _Interrupt(2)], **fit)
    assert interrupted.steps == 4
    resumed = _model(config, Randomness, seed=3)  # a new process, other weights
    history = resumed.fit(data, callbacks=[backup], **fit).history
    assert len(history["generator/loss"]) == 2  # epochs 2 and 3 only
    assert resumed.steps == 8
    assert _max_difference(_state(resumed.models), _state(uninterrupted.models)) <= 1e-6


def test_tensorboard_early_stopping_and_checkpoints(tmp_path):
    config = _config()
    model = _model(config, Randomness)
    paired, unpaired = _parts()
    logs = str(tmp_path / "logs")
    checkpoint = str(tmp_path / "checkpoints" / "epoch-{epoch}.weights.h5")
    callbacks = [
        keras.callbacks.TensorBoard(logs),
        # No epoch can improve by 1e9: training stops after `patience` more epochs.
        keras.callbacks.EarlyStopping(monitor="generator/loss", mode="min", min_delta=1e9,
                                      patience=1),
        keras.callbacks.ModelCheckpoint(checkpoint, save_weights_only=True),
    ]
    history = model.fit(keras_api.factorgan_dataset(model, paired, unpaired), epochs=10,
                        steps_per_epoch=3, callbacks=callbacks, verbose=0).history
    assert len(history["generator/loss"]) == 2 and model.steps == 6
    written = scalars(os.path.join(logs, "train"), "epoch_generator/loss")
    assert [step for step, _ in written] == [0, 1]
    np.testing.assert_allclose([value for _, value in written], history["generator/loss"],
                               rtol=1e-6)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch-1.weights.h5",
                                                            "epoch-2.weights.h5"]
    restored = _model(config, Randomness, seed=4)
    restored.load_weights(checkpoint.format(epoch=2))
    assert _max_difference(_state(restored.models), _state(model.models)) == 0.0


def test_logs_are_running_means_and_a_dict_is_one_round():
    model = _model(_config(disc_iter=1), Randomness)
    paired, unpaired = _parts()
    rounds = [r[0] for r in keras_api.factorgan_dataset(model, paired, unpaired).take(3)]
    logged = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: logged.append(float(logs["generator/loss"])))
    # With disc_iter 1 an element may be the round's dict alone.
    dicts = tf.data.Dataset.from_tensor_slices({k: tf.stack([r[k] for r in rounds]) for k in rounds[0]})
    history = model.fit(dicts, epochs=1, verbose=0, callbacks=[record]).history
    assert len(logged) == 3 and model.steps == 3
    # Each log is the mean since the epoch began: the epoch's is that of its 3 updates.
    assert all(float(tracker.count) == 3 for tracker in model.metrics)
    assert history["generator/loss"][0] == pytest.approx(logged[-1], rel=1e-6)


def test_bad_input_fails_in_one_line(tmp_path):
    config = _config()
    model = _model(config, Randomness)
    rounds = _update_data(model)
    with pytest.raises(ValueError, match=r"disc_iter=2 round batches, got 1"):
        model.train_step(rounds[:1])
    with pytest.raises(ValueError, match=r"streams \['joint', 'marginal_0', 'marginal_1'\]"):
        model.train_step(({"joint": rounds[0]["joint"]}, rounds[1]))
    half = tuple({k: v[:12] for k, v in r.items()} for r in rounds)
    with pytest.raises(ValueError, match="config.batch_size=24 rows .* got 12 per replica"):
        model.train_step(half)
    with pytest.raises(ValueError, match="takes no loss"):
        model.compile(loss="mse")
    with pytest.raises(NotImplementedError, match="no validation step"):
        model.evaluate(tf.data.Dataset.from_tensors(rounds), verbose=0)
    with pytest.raises(NotImplementedError, match=r"not saved whole \(.keras\)"):
        model.save(str(tmp_path / "model.keras"))
    with pytest.raises(ValueError, match="2 paired and 2 unpaired arrays, got 1 and 2"):
        keras_api.factorgan_dataset(model, [np.zeros([4, 3])], [None, None])
    with pytest.raises(ValueError, match="paired part 1 has 3 channels"):
        keras_api.factorgan_dataset(model, [np.zeros([4, 3]), np.zeros([4, 3])])
    with pytest.raises(ValueError, match=r"must end in the partition's 5 channels"):
        keras_api.FactorGAN(*_networks(config), PARTITION, config, sample_shape=(4,))


def test_batch_not_divisible_by_the_replicas_is_refused(two_replicas):
    with two_replicas.scope(), pytest.raises(ValueError, match="batch_size=25 is not divisible"):
        keras_api.FactorGAN(*_networks(_config()), PARTITION, _config(batch_size=25))


def _spec(hidden=8):
    return specs.GeneratorSpec("mlp", {"output_dim": 5, "hidden_units": hidden,
                                       "output_activation": "linear"},
                               [[NZ]], NZ, 0, "samples", {"sample_shape": [5]})


def test_sample_translate_and_save_generator(tmp_path):
    model = _model(_config(), Randomness)
    samples = model.sample(7, seed=2)
    assert samples.shape == (7, 5)
    np.testing.assert_array_equal(samples, model.sample(7, seed=2, batch_size=3))
    np.testing.assert_array_equal(model.predict(
        seeded_noise(7, NZ, 2), verbose=0), samples)
    folder = str(tmp_path / "generator")
    with pytest.raises(ValueError, match="is not this model's"):
        model.save_generator(folder, _spec(hidden=9))
    assert not os.path.exists(folder)
    model.save_generator(folder, _spec())
    loaded = specs.load(folder, specs.read(folder))
    np.testing.assert_array_equal(loaded(seeded_noise(7, NZ, 2)), samples)

    conditional = _model(_config(conditional=True), Randomness)
    inputs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    assert conditional.translate(inputs, seed=1).shape == (5, 2)
    with pytest.raises(ValueError, match="use translate"):
        conditional.sample(3)


def _readme_python_api():
    """The code block docs/python_api.md marks as executed here."""
    with open(os.path.join(REPO_ROOT, "docs", "python_api.md")) as f:
        page = f.read()
    found = re.search(r"<!-- executed by tests/test_keras_api.py -->\n```python\n(.*?)```",
                      page, re.S)
    assert found, "docs/python_api.md lacks the marked Keras API example"
    return found.group(1)


def test_readme_python_api_example_runs_and_exports(tmp_path, monkeypatch):
    from tf_factorgan.export import export

    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(_readme_python_api(), "docs/python_api.md", "exec"), scope)
    model = scope["model"]
    assert scope["samples"].shape == (1000, 5) and model.steps == 100
    assert scalars(os.path.join("runs", "api", "logs", "train"), "epoch_generator/loss")
    # What `python -m export.export --run_dir=runs/api/generator --kind=samples` does.
    module = export.build_module(os.path.join("runs", "api", "generator"), "samples")
    path, _ = export.publish(module, "exports", "parts")  # written, reloaded and checked
    served = tf.saved_model.load(path).signatures["serving_default"](
        num_samples=tf.constant(4), seed=tf.constant(1, tf.int64))["samples"].numpy()
    np.testing.assert_allclose(served, model.sample(4, seed=1), rtol=1e-5, atol=1e-6)
