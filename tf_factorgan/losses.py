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
