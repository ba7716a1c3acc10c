"""Which discriminators a model has, what each sees and what it learns to tell apart.

One table per model, built once by `layout(variant, num_parts, conditional)`, and read
by everything that needs to know: the discriminator round and the combined logit
(`gan.FactorGanUpdates`), the data streams a round reads (`data.streams`), the
checkpoint names (`gan.GanModels.trackables`) and the metric names. For FactorGAN
(Stoller et al. 2020, eq. 5-7 and Algorithm 1):

  discriminator   sees       real (label 1)               fake (label 0)          logit
  marginal_<i>    part i     stream marginal_<i>          generated part i          +
  p_dependency    whole      joint stream                 joint stream, shuffled    +
  q_dependency    whole      generated                    generated, shuffled       -
  joint (GAN)     whole      joint stream                 generated                 +

"Shuffled" recombines the parts across the batch (`factorisation.shuffle_parts`),
which samples the product of the marginals. "Whole" is the visible sample: all of it,
or parts 1.. when a conditional model hides its input part 0.

Naming convention: a discriminator and the stream of its real batches share a name
(`marginal_<i>`, and `joint` for the stream of whole paired samples).
"""

import dataclasses
from typing import Optional

from tf_factorgan.factorisation import Variant

JOINT = "joint"
P_DEPENDENCY = "p_dependency"
Q_DEPENDENCY = "q_dependency"
# The source of a discriminator's batches that come from the generator.
GENERATED = "generated"


def marginal(part: int) -> str:
    """Name of part `part`'s marginal discriminator and of its data stream."""
    return f"marginal_{part}"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where one side of a discriminator's batch comes from.

    stream: a data stream's name, or GENERATED.
    shuffled: parts recombined across the batch.
    """

    stream: str
    shuffled: bool = False


@dataclasses.dataclass(frozen=True)
class Discriminator:
    """One row of the table.

    part: the part it sees; None for the whole (visible) sample.
    real / fake: what it learns to label 1 / 0.
    sign: its logit's sign in the combined logit.
    """

    name: str
    part: Optional[int]
    real: Source
    fake: Source
    sign: int

    @property
    def sees_generated(self) -> bool:
        return GENERATED in (self.real.stream, self.fake.stream)


@dataclasses.dataclass(frozen=True)
class Layout:
    """The discriminators of one model in update order, and the data streams a round
    reads: name -> the part each batch holds (None: whole paired samples).

    condition_stream: where a conditional generator's inputs (part 0) come from
    (None: unconditional).
    """

    discriminators: tuple[Discriminator, ...]
    streams: dict
    condition_stream: Optional[str] = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.discriminators)

    def find(self, name: str) -> Optional[Discriminator]:
        return next((d for d in self.discriminators if d.name == name), None)

    def marginal_parts(self) -> tuple[int, ...]:
        return tuple(d.part for d in self.discriminators if d.part is not None)


def layout(variant: Variant, num_parts: int, conditional: bool = False,
           reads_pairs: bool = False) -> Layout:
    """The table of `variant` for samples of `num_parts` parts.

    A conditional generator completes part 0 (its input) with parts 1..: a
    conditional FactorGAN (or FactorGAN-no-cp) drops the marginal discriminator of
    part 0 and takes its inputs from marginal stream 0 (paired or not), a conditional
    GAN from its paired samples. `reads_pairs`: the generator also has a loss on the
    paired samples (`pairs_loss`), so the rounds draw the joint stream even where no
    discriminator needs it (FactorGAN-no-cp).
    """
    if variant is Variant.GAN:
        joint = Discriminator(JOINT, None, Source(JOINT), Source(GENERATED), +1)
        return Layout((joint,), {JOINT: None}, JOINT if conditional else None)
    first = 1 if conditional else 0
    rows = [Discriminator(marginal(i), i, Source(marginal(i)), Source(GENERATED), +1)
            for i in range(first, num_parts)]
    if variant.uses_p_dependency:
        rows.append(Discriminator(P_DEPENDENCY, None, Source(JOINT), Source(JOINT, True), +1))
    rows.append(Discriminator(Q_DEPENDENCY, None, Source(GENERATED), Source(GENERATED, True), -1))
    streams = {JOINT: None} if variant.uses_p_dependency or reads_pairs else {}
    condition_stream = marginal(0) if conditional else None
    if condition_stream:
        streams[condition_stream] = 0
    streams.update({marginal(i): i for i in range(first, num_parts)})
    return Layout(tuple(rows), streams, condition_stream)
