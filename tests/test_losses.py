import numpy as np
import pytest
import tensorflow as tf

from tf_factorgan import losses


def _softplus(x):
    return np.log1p(np.exp(x))


def test_discriminator_loss_on_known_logits():
    real, fake = np.array([2.0, -1.0, 0.0]), np.array([-3.0, 1.0, 0.0])
    got = losses.discriminator_loss(tf.constant(real), tf.constant(fake)[:, None])
    # CE(l, 1) = softplus(-l), CE(l, 0) = softplus(l)
    np.testing.assert_allclose(got, _softplus(-real) + _softplus(fake), rtol=1e-6)
    np.testing.assert_allclose(got[2], 2 * np.log(2), rtol=1e-6)


def test_discriminator_accuracy_counts_both_halves():
    got = losses.discriminator_accuracy(tf.constant([1.0, 1.0, -1.0]), tf.constant([-1.0, 1.0, 1.0]))
    np.testing.assert_allclose(got, [1.0, 0.5, 0.0])


def test_generator_objectives():
    logits = np.array([3.0, 0.0, -2.0])
    np.testing.assert_allclose(losses.generator_loss(tf.constant(logits), "ns"), _softplus(-logits), rtol=1e-6)
    np.testing.assert_allclose(losses.generator_loss(tf.constant(logits), "kl"), -logits)
    with pytest.raises(ValueError, match="objective"):
        losses.generator_loss(tf.constant(logits), "wgan")


# --- Losses on paired samples: values and gradients computed by hand -------------


def test_reconstruction_losses_average_each_example():
    predicted = tf.constant([[0.0, 1.0], [0.5, 0.5]])
    target = tf.constant([[1.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(losses.reconstruction_loss(predicted, target, "l1"), [0.5, 0.5])
    np.testing.assert_allclose(losses.reconstruction_loss(predicted, target, "l2"), [0.5, 0.25])
    with pytest.raises(ValueError, match="norm"):
        losses.reconstruction_loss(predicted, target, "l3")


def test_cross_entropy_of_class_maps():
    # Two examples of one position each, three classes.
    probabilities = tf.constant([[[0.7, 0.2, 0.1]], [[0.0, 1.0, 0.0]]])
    target = tf.constant([[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]])
    got = losses.cross_entropy(probabilities, target).numpy()
    # A zero probability is floored at PROBABILITY_EPSILON, not infinite.
    np.testing.assert_allclose(got, [-np.log(0.7), -np.log(losses.PROBABILITY_EPSILON)], rtol=1e-5)


def test_negative_log_likelihoods():
    y, centre = np.array([[1.0, 2.0]]), np.array([[0.5, 2.0]])
    log_dispersion = np.array([[np.log(0.25), 0.0]])
    gaussian = losses.negative_log_likelihood(y, centre, log_dispersion, "gaussian").numpy()
    # ((0.5^2 / 0.25 + log 0.25) + (0 / 1 + 0)) / 2 over two values.
    np.testing.assert_allclose(gaussian, [(1.0 + np.log(0.25)) / 2 / 2], rtol=1e-6)
    laplace = losses.negative_log_likelihood(y, centre, log_dispersion, "laplace").numpy()
    # (0.5 / 0.25 + log 0.25) + (0 + 0), over two values.
    np.testing.assert_allclose(laplace, [(2.0 + np.log(0.25)) / 2], rtol=1e-6)


SAMPLES = np.array([[1.0], [2.0], [4.0], [9.0]])[:, :, None]  # K = 4 samples, 1 input, 1 value


def test_gaussian_sample_moments_are_mean_and_unbiased_variance():
    centre, dispersion = losses.sample_moments(tf.constant(SAMPLES), "gaussian")
    np.testing.assert_allclose(centre, [[4.0]])
    np.testing.assert_allclose(dispersion, [[(9 + 4 + 0 + 25) / 3]])


def test_laplace_moments_are_lower_median_and_mean_absolute_deviation():
    centre, dispersion = losses.sample_moments(tf.constant(SAMPLES), "laplace")
    # K = 4: the lower of the two middle values (2 and 4), as torch.median.
    np.testing.assert_allclose(centre, [[2.0]])
    np.testing.assert_allclose(dispersion, [[(1 + 0 + 2 + 7) / 4]])


def test_laplace_median_gradient_is_spread_over_every_sample():
    samples = tf.Variable(SAMPLES)
    with tf.GradientTape() as tape:
        centre, _ = losses.sample_moments(samples, "laplace")
        loss = tf.reduce_sum(3.0 * centre)
    # d centre / d sample_k = 1/K for every k (MR-GAN appendix A), not 1 for the median.
    np.testing.assert_allclose(tape.gradient(loss, samples).numpy().ravel(), [0.75] * 4)


def test_moment_reconstruction_values():
    target = np.array([[5.0]])
    mr1 = losses.moment_reconstruction(tf.constant(SAMPLES), target, "gaussian", 1).numpy()
    np.testing.assert_allclose(mr1, [1.0])  # (5 - 4)^2
    mr2 = losses.moment_reconstruction(tf.constant(SAMPLES), target, "gaussian", 2).numpy()
    variance = 38 / 3
    np.testing.assert_allclose(mr2, [(1 / variance + np.log(variance)) / 2], rtol=1e-5)
    laplace = losses.moment_reconstruction(tf.constant(SAMPLES), target, "laplace", 2).numpy()
    np.testing.assert_allclose(laplace, [3 / 2.5 + np.log(2.5)], rtol=1e-5)
    np.testing.assert_allclose(
        losses.moment_reconstruction(tf.constant(SAMPLES), target, "laplace", 1).numpy(), [3.0])


def test_mr2_gradient_pushes_collapsed_samples_apart():
    # Samples all equal: the variance term's gradient is what makes them diverse.
    samples = tf.Variable(np.array([[0.5], [0.5 + 1e-3], [0.5 - 1e-3]])[:, :, None])
    with tf.GradientTape() as tape:
        loss = losses.moment_reconstruction(samples, np.array([[1.0]]), "gaussian", 2)
    grad = tape.gradient(loss, samples).numpy().ravel()
    # Descending the loss moves the outer samples away from the mean.
    assert grad[1] < 0 < grad[2]


def test_categorical_mr1_is_cross_entropy_of_the_mean_probabilities():
    samples = tf.constant([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])  # K=2, B=1, one position
    target = np.array([[[1.0, 0.0]]])
    got = losses.moment_reconstruction(samples, target, "categorical", 1).numpy()
    np.testing.assert_allclose(got, [-np.log(0.5)], rtol=1e-6)
    with pytest.raises(ValueError, match="second moment"):
        losses.moment_reconstruction(samples, target, "categorical", 2)


def test_proxy_moment_reconstruction_and_its_laplace_gradient():
    samples = tf.Variable(SAMPLES)
    predicted_centre = np.array([[3.0]])
    predicted_log_dispersion = np.log(np.array([[2.0]]))
    with tf.GradientTape() as tape:
        first, second = losses.proxy_moment_reconstruction(
            samples, predicted_centre, predicted_log_dispersion, "laplace", 2)
    np.testing.assert_allclose(first.numpy(), [1.0])  # (2 - 3)^2
    np.testing.assert_allclose(second.numpy(), [0.25], rtol=1e-6)  # (2.5 - 2)^2
    grad = tape.gradient(first, samples).numpy().ravel()
    # d (median - 3)^2 = 2 * (2 - 3) = -2, spread as -2 / 4 over the samples.
    np.testing.assert_allclose(grad, [-0.5] * 4)
    gaussian_first, gaussian_second = losses.proxy_moment_reconstruction(
        tf.constant(SAMPLES), predicted_centre, predicted_log_dispersion, "gaussian", 1)
    np.testing.assert_allclose(gaussian_first.numpy(), [1.0])
    np.testing.assert_allclose(gaussian_second.numpy(), [0.0])


def test_sample_moments_need_two_samples():
    with pytest.raises(ValueError, match="K >= 2"):
        losses.sample_moments(tf.zeros([1, 2, 3]), "gaussian")
