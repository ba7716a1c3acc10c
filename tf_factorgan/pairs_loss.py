"""What a conditional generator learns from its paired rows directly, beside the
adversarial loss of its (Factor)GAN (`--recon_loss`):

  none        nothing: the pairs reach the generator only through the discriminators
              (D_P / D_Q of FactorGAN, the joint D of a GAN), as in the FactorGAN paper
  l1, l2      the reconstruction loss of pix2pix (Isola et al. 2017, eq. 3-4): one
              sample per input against its target; a conditional GAN with l1 *is*
              pix2pix. It makes the generator ignore its noise (its minimiser is the
              conditional median / mean, one output per input)
  ce          cross-entropy of class probabilities against one-hot label maps, the
              usual loss of adversarial segmentation (Luc et al. 2016)
  mr1, mr2    MR-GAN's moment reconstruction (Lee et al. 2019, eq. 6-7): K samples per
              input; the target's likelihood under their sample mean (mr1) or mean
              and variance (mr2), so the samples may differ as much as the data do
  proxy_mr1,  MR-GAN's proxy MR (eq. 8-9): the samples' mean (and variance) matched to
  proxy_mr2   those a frozen predictor (`predictor.py`) learnt by maximum likelihood
              on the pairs; as stable as l1 in the paper, mr alone less so

`--likelihood` chooses the distribution of the moments: gaussian (mean, variance),
laplace (median, mean absolute deviation) or, for class probabilities, categorical
(the mean probabilities; one moment only). The loss reads the paired rows only (the
joint stream, `layout.JOINT`); a FactorGAN's unpaired rows keep feeding its marginal
discriminators. Weights as the papers: 100 for the reconstruction (pix2pix), 10 for
each moment term (MR-GAN's official code), the GAN loss 1.
"""

import dataclasses
from typing import Optional

import tensorflow as tf

from tf_factorgan import losses
from tf_factorgan.config import MODEL, TRAINING, SettingError, check, setting

NONE = "none"
SINGLE_SAMPLE = ("l1", "l2", "ce")
MOMENT_RECONSTRUCTION = ("mr1", "mr2")
PROXY = ("proxy_mr1", "proxy_mr2")
KINDS = (NONE, *SINGLE_SAMPLE, *MOMENT_RECONSTRUCTION, *PROXY)


@dataclasses.dataclass(frozen=True)
class PairsLoss:
    """The generator's loss on paired rows (the module docstring lists the kinds; each
    field's help says what it sets). moment_inputs is at most the replica's batch."""

    recon_loss: str = setting(
        NONE, "The generator's loss on the paired rows: none, pix2pix's l1/l2, cross-entropy "
        "(ce), MR-GAN's moment reconstruction (mr1, mr2) or proxy MR (proxy_mr1, proxy_mr2).",
        MODEL, choices=KINDS)
    likelihood: str = setting(
        "gaussian", "Moment losses: gaussian (mean, variance), laplace (median, mean absolute "
        "deviation) or categorical (class probabilities, one moment).", MODEL,
        choices=losses.LIKELIHOODS)
    moment_samples: int = setting(10, "Moment losses: samples per paired input (K).", MODEL,
                                  low=2, note="a sample variance needs two")
    moment_inputs: int = setting(8, "Moment losses: paired inputs per replica and update whose "
                                 "K samples are fitted.", MODEL, low=1)
    recon_weight: float = setting(100.0, "Weight of l1 / l2 / ce (pix2pix: 100).", MODEL, low=0)
    moment_weight: float = setting(10.0, "Weight of the mr likelihood or of proxy MR's first "
                                   "moment (MR-GAN: 10).", MODEL, low=0)
    second_moment_weight: float = setting(10.0, "Weight of proxy MR's second moment (MR-GAN: 10).",
                                          MODEL, low=0)
    predictor_steps: int = setting(2000, "Proxy MR: updates of the predictor stage (run once per "
                                   "data and settings).", TRAINING, low=1)
    predictor_eval_every: int = setting(100, "Proxy MR: the predictor's validation loss every N "
                                        "updates; the best is kept.", TRAINING, low=1)

    def __post_init__(self):
        check(self)
        if self.uses_moments and self.moments == 2 and self.likelihood == "categorical":
            raise SettingError(f"{{recon_loss}}={self.recon_loss} matches a second moment, which "
                               "{likelihood}=categorical does not have: use mr1/proxy_mr1, or a "
                               "gaussian or laplace likelihood")

    @classmethod
    def of(cls, settings) -> "PairsLoss":
        """The PairsLoss of any settings object with these fields (an experiment's
        config inherits them)."""
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})

    @property
    def active(self) -> bool:
        return self.recon_loss != NONE

    @property
    def uses_moments(self) -> bool:
        return self.recon_loss in MOMENT_RECONSTRUCTION + PROXY

    @property
    def uses_predictor(self) -> bool:
        return self.recon_loss in PROXY

    @property
    def moments(self) -> int:
        """1 or 2: the sample moments matched (mr*, proxy_mr*)."""
        return int(self.recon_loss[-1])

    @property
    def samples_per_input(self) -> int:
        return self.moment_samples if self.uses_moments else 1

    @property
    def needs_probabilities(self) -> bool:
        """ce and the categorical likelihood need generator outputs that are class
        probabilities (label maps one-hot)."""
        return self.recon_loss == "ce" or (self.uses_moments and self.likelihood == "categorical")

    def inputs_per_replica(self, rows: int) -> int:
        """Paired inputs of a replica's batch of `rows` that the loss reads: all of
        them for l1/l2/ce, the first moment_inputs for the moment losses."""
        return min(rows, self.moment_inputs) if self.uses_moments else rows


def per_example(settings: PairsLoss, samples: tf.Tensor, target: tf.Tensor,
                predicted: Optional[tuple] = None) -> tf.Tensor:
    """The weighted loss of each paired input.

    samples: [K, n, ...] generator outputs, K = settings.samples_per_input samples of
      each of n inputs; target: [n, ...] their paired targets; predicted: the frozen
      predictor's (centre [n, ...], log-dispersion [n, ...] or None) for proxy MR.
    Returns [n] float32.
    """
    kind = settings.recon_loss
    if kind in ("l1", "l2"):
        return settings.recon_weight * losses.reconstruction_loss(samples[0], target, kind)
    if kind == "ce":
        return settings.recon_weight * losses.cross_entropy(samples[0], target)
    if kind in MOMENT_RECONSTRUCTION:
        return settings.moment_weight * losses.moment_reconstruction(
            samples, target, settings.likelihood, settings.moments)
    if kind in PROXY:
        if predicted is None:
            raise SettingError(f"{{recon_loss}}={kind} needs the predictor's moments")
        first, second = losses.proxy_moment_reconstruction(
            samples, *predicted, settings.likelihood, settings.moments)
        return settings.moment_weight * first + settings.second_moment_weight * second
    raise SettingError(f"{{recon_loss}}={kind} has no loss")
