import numpy as np
import tensorflow as tf

from tf_factorgan.noise import Randomness, noise_per_seed, repeated_noise, seeded_noise


def test_every_replica_draws_its_own_noise_and_permutations(two_replicas):
    mirrored = two_replicas
    with mirrored.scope():
        randomness = Randomness(7)

    @tf.function
    def draw():
        return mirrored.run(lambda: (randomness.noise(4, 3), randomness.permutations(16, 1)[0]))

    noise, perm = draw()
    n0, n1 = (t.numpy() for t in mirrored.experimental_local_results(noise))
    p0, p1 = (t.numpy() for t in mirrored.experimental_local_results(perm))
    assert not np.allclose(n0, n1) and not np.array_equal(p0, p1)
    assert n0.min() >= -1 and n0.max() <= 1
    np.testing.assert_array_equal(np.sort(p0), np.arange(16))


def test_seeded_noise_is_a_function_of_the_seed_alone():
    a = seeded_noise(5, 3, 11).numpy()
    np.testing.assert_array_equal(a, seeded_noise(5, 3, tf.constant(11)).numpy())
    assert a.shape == (5, 3) and -1 <= a.min() and a.max() <= 1
    assert not np.allclose(a, seeded_noise(5, 3, 12).numpy())
    # Per-seed rows do not depend on their batch; repeated rows are one vector.
    rows = noise_per_seed([11, 4, 11], 3).numpy()
    np.testing.assert_array_equal(rows[0], a[0])
    np.testing.assert_array_equal(rows[0], rows[2])
    np.testing.assert_array_equal(rows[1], seeded_noise(1, 3, 4).numpy()[0])
    np.testing.assert_array_equal(repeated_noise(4, 3, 11).numpy(), np.tile(a[:1], (4, 1)))
