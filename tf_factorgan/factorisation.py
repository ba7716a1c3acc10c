"""The factorisation of FactorGAN (Stoller, Ewert & Dixon, ICLR 2020), in one place.

A sample x is split along its last axis into parts x_1..x_K (index ranges of a flat
vector, or channel ranges of an image or spectrogram in NHWC layout). The density
ratio the generator needs, log p(x)/q(x), then factorises (paper, eq. 5-7) as

    log p/q = sum_i log p_i(x_i)/q_i(x_i)               marginal discriminators D_i
            + log p(x)/prod_i p_i(x_i)                  p-dependency discriminator D_P
            - log q(x)/prod_i q_i(x_i)                  q-dependency discriminator D_Q

D_P and D_Q each learn to tell a joint batch from the same batch whose parts were
shuffled independently along the batch axis (which samples from the product of the
marginals). Everything in this module is pure: randomness comes in as arguments.
"""

import dataclasses
import enum
from typing import Optional, Sequence

import tensorflow as tf


class Variant(enum.Enum):
    """Which discriminators a model uses.

    GAN: one joint discriminator, no factorisation.
    FACTORGAN: marginal discriminators for every part, D_P and D_Q.
    FACTORGAN_NO_CP: as FACTORGAN, but D_P is taken to be 0 (real parts assumed
        independent, so no paired data is needed at all).

    Whether the generator is conditional (part 0, a photo or a mixture, is its input)
    is a setting of its own (`gan.GanConfig.conditional`): a conditional FactorGAN
    drops the marginal discriminator of part 0 (`layout.layout`).
    """

    GAN = "gan"
    FACTORGAN = "factorgan"
    FACTORGAN_NO_CP = "factorgan_no_cp"

    @property
    def is_factorised(self) -> bool:
        return self is not Variant.GAN

    @property
    def uses_p_dependency(self) -> bool:
        return self is Variant.FACTORGAN


@dataclasses.dataclass(frozen=True)
class Partition:
    """Consecutive ranges of the last axis, one per part.

    `sizes[i]` is the length of part i along the last axis: (784, 784) splits a flat
    stacked pair of MNIST digits into upper and lower digit; (3, 3) splits a 6-channel
    (photo, label map) image.
    """

    sizes: tuple[int, ...]

    def __post_init__(self):
        if len(self.sizes) < 2 or any(int(s) <= 0 for s in self.sizes):
            raise ValueError(
                f"Partition needs at least two parts of positive size, got sizes={self.sizes}"
            )

    @property
    def num_parts(self) -> int:
        return len(self.sizes)

    @property
    def total_size(self) -> int:
        return sum(self.sizes)

    def split(self, x: tf.Tensor) -> list[tf.Tensor]:
        """[B, ..., total_size] -> K tensors [B, ..., sizes[i]]."""
        return tf.split(x, list(self.sizes), axis=-1)

    def join(self, parts: Sequence[tf.Tensor]) -> tf.Tensor:
        """Inverse of `split`."""
        return tf.concat(list(parts), axis=-1)


def shuffle_parts(
    x: tf.Tensor, partition: Partition, permutations: Sequence[tf.Tensor]
) -> tf.Tensor:
    """Recombines the parts of a batch across samples.

    Args:
      x: [B, ..., total_size] joint samples.
      partition: how x splits into K parts.
      permutations: K - 1 int tensors [B], each a permutation of range(B); part i + 1
        is reordered by permutations[i]. Part 0 stays in place, so sample b keeps its
        first part and takes every other part from an independently, uniformly chosen
        sample of the same batch (possibly itself).

    Returns:
      [B, ..., total_size], distributed as the product of the batch's marginals.
    """
    if len(permutations) != partition.num_parts - 1:
        raise ValueError(
            f"shuffle_parts needs {partition.num_parts - 1} permutations for "
            f"{partition.num_parts} parts, got {len(permutations)}"
        )
    parts = partition.split(x)
    shuffled = [parts[0]] + [
        tf.gather(part, perm, axis=0) for part, perm in zip(parts[1:], permutations)
    ]
    return partition.join(shuffled)


def combined_logit(
    marginal_logits: Sequence[tf.Tensor],
    q_dependency_logit: tf.Tensor,
    p_dependency_logit: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """The FactorGAN estimate of log p(x)/q(x): sum_i D_i(x_i) + D_P(x) - D_Q(x).

    Logits may be [B] or [B, 1] (each is flattened to [B], so shapes never broadcast
    to [B, B]); `p_dependency_logit` is None for FACTORGAN_NO_CP, where D_P is 0.
    Returns [B].
    """
    flat = lambda logits: tf.reshape(logits, [-1])
    total = tf.add_n([flat(m) for m in marginal_logits]) - flat(q_dependency_logit)
    if p_dependency_logit is not None:
        total += flat(p_dependency_logit)
    return total
