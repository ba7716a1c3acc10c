"""Per-example GAN losses on logits.

Every function returns one value per example ([B] float32) so that the caller can
average over the *global* batch with `tf.nn.compute_average_loss`; Keras loss classes
would divide by the replica count a second time under a distribution strategy.
"""

import tensorflow as tf

GENERATOR_OBJECTIVES = ("ns", "kl")


def _flat(logits: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(logits, tf.float32), [-1])


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """Sigmoid cross-entropy with target 1 for real and 0 for fake.

    Args:
      real_logits, fake_logits: [B] or [B, 1] logits of the same batch size.

    Returns:
      [B]: CE(real_b, 1) + CE(fake_b, 0); its batch mean is the usual D loss.
    """
    real, fake = _flat(real_logits), _flat(fake_logits)
    return tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.ones_like(real), logits=real
    ) + tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake), logits=fake)


def discriminator_accuracy(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """[B]: per-example share (0, 0.5 or 1) of the real/fake pair classified right."""
    real, fake = _flat(real_logits), _flat(fake_logits)
    return 0.5 * (tf.cast(real > 0, tf.float32) + tf.cast(fake < 0, tf.float32))


def generator_loss(fake_logits: tf.Tensor, objective: str = "ns") -> tf.Tensor:
    """Generator loss on the (combined) logit of generated samples.

    "ns": non-saturating, -log sigmoid(logit) = CE(logit, 1) (Goodfellow et al. 2014).
    "kl": -logit; since the optimal logit is log p/q, this minimises KL(q || p), the
      alternative objective of the original FactorGAN code.

    Returns:
      [B] per-example loss.
    """
    logits = _flat(fake_logits)
    if objective == "ns":
        return tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.ones_like(logits), logits=logits
        )
    if objective == "kl":
        return -logits
    raise ValueError(
        f"generator objective must be one of {GENERATOR_OBJECTIVES}, got {objective!r}"
    )


# --- Losses on paired samples -----------------------------------------------------
#
# A conditional generator can also learn from its paired rows directly. Every function
# below takes outputs and targets of one batch, [B, ...] (images [B, H, W, C], vectors
# [B, F]), and returns one value per example ([B] float32, the mean over that example's
# values) for `tf.nn.compute_average_loss`, like the GAN losses above. Samples of a
# conditional generator come as [K, B, ...]: K samples for each of B inputs.

RECONSTRUCTION_NORMS = ("l1", "l2")
LIKELIHOODS = ("gaussian", "laplace", "categorical")
# Clamp of a predicted log-dispersion (MR-GAN's official code: [-6, 0]).
LOG_DISPERSION_RANGE = (-6.0, 0.0)
# Added to a sample dispersion before dividing by it or taking its log (as MR-GAN's
# code): a generator whose samples collapse to one value gets a large, finite loss.
DISPERSION_EPSILON = 1e-9
# Smallest probability inside a logarithm: one-hot targets have exact zeros.
PROBABILITY_EPSILON = 1e-7


def example_mean(values: tf.Tensor) -> tf.Tensor:
    """[B, ...] -> [B] float32: the mean over everything but the batch axis."""
    values = tf.cast(values, tf.float32)
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def reconstruction_loss(predicted: tf.Tensor, target: tf.Tensor, norm: str = "l1") -> tf.Tensor:
    """[B]: mean |predicted - target| ("l1", pix2pix's loss: Isola et al. 2017, eq. 3)
    or mean (predicted - target)^2 ("l2") per example."""
    if norm not in RECONSTRUCTION_NORMS:
        raise ValueError(f"reconstruction norm must be one of {RECONSTRUCTION_NORMS}, got {norm!r}")
    difference = tf.cast(predicted, tf.float32) - tf.cast(target, tf.float32)
    return example_mean(tf.abs(difference) if norm == "l1" else tf.square(difference))


def cross_entropy(probabilities: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """[B]: per example, the mean over positions of -sum_c target_c log p_c.

    probabilities, target: [B, ..., C] distributions over the last axis (target
    usually one-hot class maps); probabilities are floored at PROBABILITY_EPSILON.
    """
    log_p = tf.math.log(tf.maximum(tf.cast(probabilities, tf.float32), PROBABILITY_EPSILON))
    return example_mean(-tf.reduce_sum(tf.cast(target, tf.float32) * log_p, axis=-1))


def negative_log_likelihood(target: tf.Tensor, centre: tf.Tensor, log_dispersion: tf.Tensor,
                            likelihood: str) -> tf.Tensor:
    """[B]: per example, the mean negative log-likelihood (without its constant) of
    `target` under independent per-value distributions, as MR-GAN's predictor learns
    them (Lee et al. 2019, eq. 3 and 4):

      gaussian  ((y - mu)^2 / sigma^2 + log sigma^2) / 2,   log_dispersion = log sigma^2
      laplace   |y - m| / b + log b,                        log_dispersion = log b

    target, centre, log_dispersion: [B, ...] of one shape.
    """
    if likelihood not in ("gaussian", "laplace"):
        raise ValueError(f"a likelihood with a dispersion is gaussian or laplace, got {likelihood!r}")
    y, centre = tf.cast(target, tf.float32), tf.cast(centre, tf.float32)
    log_dispersion = tf.cast(log_dispersion, tf.float32)
    inverse = tf.exp(-log_dispersion)
    if likelihood == "gaussian":
        return example_mean((tf.square(y - centre) * inverse + log_dispersion) / 2.0)
    return example_mean(tf.abs(y - centre) * inverse + log_dispersion)


def _lower_median(samples: tf.Tensor) -> tf.Tensor:
    """[K, B, ...] -> [B, ...]: the ((K - 1) // 2)-th smallest of the K samples (for
    even K the lower of the two middle values, as torch.median in MR-GAN's code)."""
    moved = tf.experimental.numpy.moveaxis(samples, 0, -1)
    return tf.sort(moved, axis=-1)[..., (samples.shape[0] - 1) // 2]


def sample_moments(samples: tf.Tensor, likelihood: str) -> tuple[tf.Tensor, tf.Tensor]:
    """The sample statistics MR-GAN fits (Lee et al. 2019, section 3.2 and appendix A).

    samples: [K, B, ...] float, K >= 2 samples of each of B inputs.
    Returns (centre, dispersion), each [B, ...] float32:
      gaussian     the sample mean and the unbiased sample variance (divisor K - 1);
      laplace      the sample median and the mean absolute deviation from it. The
                   median's gradient reaches one sample only; as in MR-GAN (appendix
                   A) it is spread over all of them: the centre's value is the median,
                   its gradient that of the sample mean (1/K to every sample);
      categorical  the mean of the samples (class probabilities) and None.
    """
    samples = tf.cast(samples, tf.float32)
    count = samples.shape[0]
    if count is None or count < 2:
        raise ValueError(f"sample moments need K >= 2 samples per input (a static axis 0), got {count}")
    mean = tf.reduce_mean(samples, axis=0)
    if likelihood == "gaussian":
        variance = tf.reduce_sum(tf.square(samples - mean), axis=0) / (count - 1)
        return mean, variance
    if likelihood == "laplace":
        centre = mean + tf.stop_gradient(_lower_median(samples) - mean)
        return centre, tf.reduce_mean(tf.abs(samples - centre), axis=0)
    if likelihood == "categorical":
        return mean, None
    raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def _no_second_moment(likelihood: str, moments: int) -> None:
    if moments not in (1, 2):
        raise ValueError(f"moments must be 1 or 2, got {moments}")
    if likelihood == "categorical" and moments == 2:
        raise ValueError("the categorical likelihood has no second moment to match: a value's "
                         "class probabilities (the first moment) are its whole distribution; "
                         "use one moment, or a gaussian or laplace likelihood")


def moment_reconstruction(samples: tf.Tensor, target: tf.Tensor, likelihood: str,
                          moments: int) -> tf.Tensor:
    """MR1 / MR2 (Lee et al. 2019, eq. 6 and 7): [B], the likelihood of the target
    under the sample moments of K samples per input instead of under one sample,
    which keeps the generator's outputs diverse where a reconstruction loss collapses
    them onto their centre.

    samples: [K, B, ...] generator outputs for B inputs; target: [B, ...].
      MR1 (moments=1): the centre alone: gaussian (y - mean)^2, laplace |y - median|
        (mean over values); categorical: cross-entropy of the mean probabilities.
      MR2 (moments=2): the negative log-likelihood with the sample dispersion:
        gaussian ((y - mean)^2 / var + log var) / 2, laplace |y - median| / mad + log mad
        (dispersions + DISPERSION_EPSILON).
    """
    _no_second_moment(likelihood, moments)
    centre, dispersion = sample_moments(samples, likelihood)
    if likelihood == "categorical":
        return cross_entropy(centre, target)
    y = tf.cast(target, tf.float32)
    deviation = tf.square(y - centre) if likelihood == "gaussian" else tf.abs(y - centre)
    if moments == 1:
        return example_mean(deviation)
    return negative_log_likelihood(y, centre, tf.math.log(dispersion + DISPERSION_EPSILON), likelihood)


def proxy_moment_reconstruction(samples: tf.Tensor, predicted_centre: tf.Tensor,
                                predicted_log_dispersion, likelihood: str,
                                moments: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Proxy MR1 / MR2 (Lee et al. 2019, eq. 8 and 9): the sample moments of K samples
    per input matched to a frozen predictor's (`predictor.MomentPredictor`), which
    learnt them by maximum likelihood on the pairs.

    samples: [K, B, ...]; predicted_centre, predicted_log_dispersion: [B, ...] (the
    latter None for categorical or moments=1).
    Returns ([B] first-moment loss, [B] second-moment loss; zeros when moments=1):
      first   mean (centre - predicted centre)^2 (gaussian, laplace with the spread
              median gradient); categorical: cross-entropy of the sample mean against
              the predicted probabilities;
      second  mean (dispersion - exp(predicted log-dispersion))^2.
    """
    _no_second_moment(likelihood, moments)
    centre, dispersion = sample_moments(samples, likelihood)
    predicted_centre = tf.stop_gradient(tf.cast(predicted_centre, tf.float32))
    if likelihood == "categorical":
        first = cross_entropy(centre, predicted_centre)
    else:
        first = example_mean(tf.square(centre - predicted_centre))
    if moments == 1:
        return first, tf.zeros_like(first)
    predicted = tf.stop_gradient(tf.exp(tf.cast(predicted_log_dispersion, tf.float32)))
    return first, example_mean(tf.square(dispersion - predicted))
