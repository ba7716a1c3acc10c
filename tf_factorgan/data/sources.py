"""What was observed of samples split into K parts: a paired set and unpaired parts.

FactorGAN's setting (Stoller et al. 2020, section 3): few complete samples (every part
observed together, "paired") and many incomplete ones (one part observed alone,
"unpaired"). `Observations` holds both, one pool per part for each (`data.pools`:
arrays in memory or rows on disk), and turns them into the training streams a model's
layout asks for (`layout.Layout.streams`):

  stream         draws from                                     used by
  joint          the paired samples, whole                      D_P, the GAN baseline
  marginal_<i>   part i of every observation of part i: the     D_i, a conditional
                 paired samples' part i and the unpaired part   generator's inputs,
                 i, each counted once                           CycleGAN

so unpaired observations never reach the joint stream, and a model whose layout has
only the joint stream (the GAN baseline) sees only the paired set.
"""

import dataclasses
from typing import Callable, Optional, Sequence

import tensorflow as tf

from tf_factorgan.data import pools, streams


@dataclasses.dataclass(frozen=True)
class Observations:
    """paired: K pools [Np, ...], row n of each from the same sample; unpaired: K
    pools [Nu_k, ...] or None (nothing of part k observed alone). part_names: K names
    for summaries ("photo", "label_map", ...)."""

    paired: tuple
    unpaired: tuple
    part_names: tuple

    def __post_init__(self):
        k = len(self.part_names)
        if len(self.paired) != k or len(self.unpaired) != k:
            raise ValueError(f"Observations needs {k} paired and {k} unpaired pools "
                             f"(one per part), got {len(self.paired)} and {len(self.unpaired)}")
        counts = {len(p) for p in self.paired}
        if len(counts) != 1:
            raise ValueError(f"paired pools must have one row count, got {sorted(counts)}")
        for name, paired, unpaired in zip(self.part_names, self.paired, self.unpaired):
            if unpaired is not None and tuple(unpaired.shape[1:]) != tuple(paired.shape[1:]):
                raise ValueError(f"unpaired {name} rows have shape {tuple(unpaired.shape[1:])}, "
                                 f"the paired ones {tuple(paired.shape[1:])}")

    @property
    def num_paired(self) -> int:
        return len(self.paired[0])

    def num_unpaired(self, part: int) -> int:
        unpaired = self.unpaired[part]
        return 0 if unpaired is None else len(unpaired)

    def marginal_pool(self, part: int) -> pools.Pool:
        """Every observation of part `part`: the paired ones first, then the unpaired."""
        return pools.concat([self.paired[part], self.unpaired[part]])

    def summary(self) -> dict:
        """Counts per source and the paired fraction of each part's observations."""
        result = {"num_paired": self.num_paired}
        for part, name in enumerate(self.part_names):
            unpaired = self.num_unpaired(part)
            result[f"num_unpaired_{name}"] = unpaired
            result[f"paired_fraction_{name}"] = self.num_paired / (self.num_paired + unpaired)
        return result

    def describe(self) -> str:
        """One line for the terminal."""
        parts = ", ".join(
            f"{self.num_unpaired(i)} unpaired {name} {tuple(self.paired[i].shape[1:])}"
            for i, name in enumerate(self.part_names))
        return f"data: {self.num_paired} paired samples, {parts}"


def from_aligned(parts: Sequence, num_paired: int, part_names: Sequence[str]) -> Observations:
    """Simulated incompleteness (the paper's benchmarks): aligned pools of N samples
    whose first `num_paired` rows stay paired; the rest of each part is unpaired."""
    total = len(parts[0])
    if not 1 <= num_paired <= total:
        raise ValueError(f"the paired count must lie in [1, {total}], got {num_paired}")
    rest = [p[num_paired:] if num_paired < total else None for p in parts]
    return Observations(tuple(p[:num_paired] for p in parts), tuple(rest), tuple(part_names))


def training_streams(observations: Observations, stream_parts: dict,
                     encoders: Optional[Sequence[Optional[Callable]]] = None,
                     mirror: bool = False, jitter: float = 0.0) -> dict[str, streams.Stream]:
    """The Streams a layout reads: key -> part (None: the joint stream of whole paired
    samples, parts joined along the last axis), as `layout.Layout.streams`.

    encoders: per part, None or a TF function float32 [B, ...] rows (as gathered,
    uint8 images in [0, 1]) -> the networks' form of that part (e.g. one-hot label
    maps, `data.label_encoding`). mirror: images [B, H, W, C] are flipped left-right
    with probability 1/2 each (pix2pix's mirroring), a whole pair together, from the
    stream's seed. jitter: > 0 also enlarges each image row by that fraction and crops
    a random window of its size back (`jittered`), a whole pair together."""
    encoders = list(encoders or [None] * len(observations.part_names))

    def encoded(pool, part: int) -> streams.Gather:
        gather = streams.pool_gatherer(pool)
        encode = encoders[part]
        return gather if encode is None else (lambda indices: encode(gather(indices)))

    def joint() -> streams.Gather:
        gathers = [encoded(p, i) for i, p in enumerate(observations.paired)]
        return lambda indices: tf.concat([g(indices) for g in gathers], axis=-1)

    def stream(num_items: int, build: Callable[[], streams.Gather]) -> streams.Stream:
        # Gathers are built inside the input pipeline (`Stream.make_gather`), so the
        # pools' constants live where it runs.
        return streams.Stream(num_items, lambda seed: augmented(build(), seed))

    def augmented(gather: streams.Gather, seed: int) -> streams.Gather:
        gather = mirrored(gather, seed) if mirror else gather
        # Its own seed, so a run with --mirror alone draws the flips it always drew.
        return jittered(gather, seed + 1, jitter) if jitter else gather

    result = {}
    for key, part in stream_parts.items():
        if part is None:
            result[key] = stream(observations.num_paired, joint)
        else:
            pool = observations.marginal_pool(part)
            result[key] = stream(len(pool), lambda pool=pool, part=part: encoded(pool, part))
    return result


def mirrored(gather: streams.Gather, seed: int) -> streams.Gather:
    """`gather` whose image rows [B, H, W, C] are each flipped left-right with
    probability 1/2, drawn from a generator seeded by `seed`."""
    generator = tf.random.Generator.from_seed(seed)

    def gather_mirrored(indices):
        rows = gather(indices)
        flip = generator.uniform([tf.shape(rows)[0]]) < 0.5
        return tf.where(flip[:, None, None, None], tf.reverse(rows, axis=[2]), rows)

    return gather_mirrored


def jittered(gather: streams.Gather, seed: int, jitter: float) -> streams.Gather:
    """`gather` whose image rows [B, H, W, C] are each enlarged to H' x W' =
    round(H (1 + jitter)) x round(W (1 + jitter)) and cropped back to H x W at a random
    offset: pix2pix's random jitter (Isola et al. 2017, section 6.2: 256 -> 286, a jitter
    of 0.117), a pair's channels together.

    Enlarging is by nearest neighbour, so one-hot and RGB label maps keep their exact
    classes; it and the crop are one gather of source rows and columns: output pixel
    (i, j) of a row cropped at (top, left) is source pixel
    ((top + i) * H // H', (left + j) * W // W'). Offsets are drawn from a generator
    seeded by `seed`, uniform over every whole-pixel window."""

    generator = tf.random.Generator.from_seed(seed)

    def source_indices(size: int, count: tf.Tensor) -> tf.Tensor:
        """[count, size]: for each of `count` rows, a random window's source indices
        along an axis of `size` pixels."""
        enlarged = int(round(size * (1.0 + jitter)))
        offsets = generator.uniform([count], 0, enlarged - size + 1, dtype=tf.int32)
        return (tf.range(size)[None, :] + offsets[:, None]) * size // enlarged

    def gather_jittered(indices):
        rows = gather(indices)
        count = tf.shape(rows)[0]
        rows = tf.gather(rows, source_indices(rows.shape[1], count), axis=1, batch_dims=1)
        return tf.gather(rows, source_indices(rows.shape[2], count), axis=2, batch_dims=1)

    return gather_jittered


def counts_by_stream(observations: Observations, stream_parts: dict) -> dict[str, dict]:
    """stream -> {"paired": rows it may draw from the paired set, "unpaired": from the
    unpaired pools}: what each stream (and so each discriminator) can see."""
    return {
        key: {"paired": observations.num_paired,
              "unpaired": 0 if part is None else observations.num_unpaired(part)}
        for key, part in stream_parts.items()
    }

