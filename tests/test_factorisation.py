import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import factorisation
from tf_factorgan.factorisation import Partition, Variant


def _batch(batch_size=6):
    # Row b holds the value 10 * b + part in every entry of part `part`, so each entry
    # tells which sample and which part it came from.
    partition = Partition((2, 3, 1))
    rows = [np.concatenate([np.full(s, 10 * b + p) for p, s in enumerate(partition.sizes)])
            for b in range(batch_size)]
    return partition, tf.constant(np.array(rows, np.float32))


def test_split_and_join_round_trip_on_channels():
    partition = Partition((3, 3))
    x = tf.random.uniform([2, 4, 4, 6])
    upper, lower = partition.split(x)
    assert upper.shape == (2, 4, 4, 3) and lower.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(partition.join([upper, lower]), x)


def test_shuffle_keeps_first_part_and_permutes_each_other_part_separately():
    partition, x = _batch()
    perms = [tf.constant([5, 4, 3, 2, 1, 0]), tf.constant([1, 2, 3, 4, 5, 0])]
    shuffled = factorisation.shuffle_parts(x, partition, perms).numpy()
    first, second, third = np.split(shuffled, [2, 5], axis=1)
    np.testing.assert_array_equal(first[:, 0], 10 * np.arange(6))
    np.testing.assert_array_equal(second[:, 0], 10 * np.array([5, 4, 3, 2, 1, 0]) + 1)
    np.testing.assert_array_equal(third[:, 0], 10 * np.array([1, 2, 3, 4, 5, 0]) + 2)
    # Every entry of a part moves together.
    assert np.all(second == second[:, :1]) and np.all(third == third[:, :1])


def test_random_shuffles_draw_parts_from_the_same_batch_independently():
    partition, x = _batch(batch_size=8)
    gen = tf.random.Generator.from_seed(3)
    same_source = 0
    for _ in range(200):
        perms = [tf.argsort(gen.uniform([8])) for _ in range(2)]
        out = factorisation.shuffle_parts(x, partition, perms).numpy()
        sources = [(out[:, i] - p) / 10 for i, p in ((0, 0), (2, 1), (5, 2))]
        for src in sources:  # each part is a permutation of the batch's samples
            np.testing.assert_array_equal(np.sort(src), np.arange(8))
        same_source += np.sum(sources[1] == sources[2])
    # Independent permutations put parts 2 and 3 of one row on the same sample with
    # probability 1/8; a shared permutation would do so always.
    assert abs(same_source / (200 * 8) - 1 / 8) < 0.03


def test_shuffle_needs_one_permutation_per_non_first_part():
    partition, x = _batch()
    with pytest.raises(ValueError, match="needs 2 permutations"):
        factorisation.shuffle_parts(x, partition, [tf.range(6)])


def test_combined_logit_is_sum_of_marginals_plus_p_minus_q():
    m1, m2 = tf.constant([1.0, -2.0]), tf.constant([0.5, 0.25])
    p, q = tf.constant([3.0, 1.0]), tf.constant([-1.0, 4.0])
    np.testing.assert_allclose(factorisation.combined_logit([m1, m2], q, p), [5.5, -4.75])
    # [B, 1] discriminator outputs are flattened, never broadcast to [B, B].
    mixed = factorisation.combined_logit([m1[:, None], m2], q[:, None], p)
    np.testing.assert_allclose(mixed, [5.5, -4.75])
    # FactorGAN-no-cp: D_P is 0.
    np.testing.assert_allclose(factorisation.combined_logit([m1, m2], q), [2.5, -5.75])


def test_variants_choose_their_discriminators():
    assert Variant.FACTORGAN.uses_p_dependency
    assert not Variant.FACTORGAN_NO_CP.uses_p_dependency
    assert not Variant.GAN.is_factorised


def test_partition_rejects_fewer_than_two_parts():
    with pytest.raises(ValueError, match="at least two parts"):
        Partition((784,))
