"""Singing voice separation on MUSDB18 (FactorGAN paper, appendix A.2).

A sample is a 256-bin x 128-frame snippet with three channels: the mixture, the
accompaniment and the vocals (log1p magnitudes, `data/musdb.py`). The generator
(`models/masking.py`) maps the mixture and noise to the two sources through a mask.

  factorgan  conditional FactorGAN: marginal discriminators for accompaniment and for
             vocals (fed every training song), D_P / D_Q on (accompaniment, vocals) as
             2 channels; the generator separates the mixtures of every song. No
             discriminator sees the mixture: the mask makes the sources add up to it.
  gan        one discriminator on the two source channels of the paired songs; the
             generator separates only the paired songs' mixtures.

The paired songs are the first --num_joint_songs of a seeded shuffle of the training
songs. Evaluation separates every test song whole (`audio/separation.py`) and scores
it with BSS Eval v4 (`eval/separation_metrics.py`).

Output under `<out_path>/audio_separation/<experiment_name>/`:
  checkpoints/, logs/     resumable state, TensorBoard (losses, spectrograms, audio, metrics)
  generator.weights.h5    final separator weights, with generator.json (its spec),
                          which `python -m trainers.separate --run_dir=...` loads
  metrics.json            SDR/SIR/SAR per source (median and mean over songs) and settings
"""

import dataclasses
import os
from typing import ClassVar

import numpy as np
import tensorflow as tf
import tqdm

from tf_factorgan import gan, images, noise, trainer
from tf_factorgan.audio import io as audio_io
from tf_factorgan.audio import separation
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.audio.windows import ACCOMPANIMENT, SOURCES, VOCALS, WINDOW_FRAMES
from tf_factorgan.data import musdb, sources, streams
from tf_factorgan.eval import separation_metrics
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.conv import ConvDiscriminator
from tf_factorgan.models import legacy_specs, specs
from tf_factorgan.models.masking import MaskingSeparator

SETTINGS = SpectrogramSettings()
# Channels of a sample: the generator's input, then the two sources in the order of
# MaskingSeparator's output (the mask's share, the accompaniment, first).
CHANNELS = ("mixture", ACCOMPANIMENT, VOCALS)
PARTITION = Partition((1, 1, 1))
SAMPLE_SHAPE = (SETTINGS.num_bins, WINDOW_FRAMES, len(CHANNELS))
# What the trainer prints and TensorBoard shows first.
HEADLINE_METRICS = tuple(f"{source}/SDR/median" for source in SOURCES)


@dataclasses.dataclass(frozen=True)
class AudioSeparationConfig(common.TrainingSettings):
    """musdb_root: MUSDB18 folder (train/, test/); cache_dir: preprocessed spectrograms
    (default <out_path>/musdb_cache); eval_*: BSS Eval window and hop in seconds (1 s:
    the SiSEC 2018 standard; the original FactorGAN code used 15 s / 15 s)."""

    EXPERIMENT: ClassVar[str] = "audio_separation"

    musdb_root: str = "data/musdb18"
    is_wav: bool = False
    factorgan: bool = True
    num_joint_songs: int = 10
    ngf: int = 32
    disc_channels: int = 32
    steps: int = 40000
    cache_dir: str = ""
    snippet_stride: int = 64
    eval_window_seconds: float = 1.0
    eval_hop_seconds: float = 1.0
    max_eval_songs: int = 0
    griffin_lim_iterations: int = 0

    def __post_init__(self):
        super().__post_init__()
        if self.num_joint_songs < 1:
            raise ValueError(f"--num_joint_songs must be >= 1, got {self.num_joint_songs}")
        for name in ("ngf", "disc_channels", "snippet_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_window_seconds <= 0 or self.eval_hop_seconds <= 0:
            raise ValueError("--eval_window_seconds and --eval_hop_seconds must be > 0")
        if self.max_eval_songs < 0 or self.griffin_lim_iterations < 0:
            raise ValueError("--max_eval_songs and --griffin_lim_iterations must be >= 0")

    @property
    def variant(self) -> Variant:
        return Variant.CONDITIONAL_FACTORGAN if self.factorgan else Variant.GAN

    def gan_config(self) -> gan.GanConfig:
        return super().gan_config(self.variant, conditional=True, condition_visible=False)


@dataclasses.dataclass(frozen=True)
class AudioData:
    """snippets: every training snippet, the paired songs' first (num_joint_snippets
    of them); test_tracks: musdb tracks to separate and score."""

    snippets: musdb.SnippetSet
    num_joint_snippets: int
    song_names: tuple[str, ...]
    test_tracks: list

    def parts(self) -> list[np.ndarray]:
        return [getattr(self.snippets, name) for name in CHANNELS]


def build_data(config: AudioSeparationConfig, spectrograms: list[dict], names, test_tracks) -> AudioData:
    """Orders the songs paired first, cuts snippets and counts the paired ones."""
    paired, _ = musdb.split_songs(len(spectrograms), config.num_joint_songs, config.seed)
    paired = list(paired)
    order = paired + [i for i in range(len(spectrograms)) if i not in paired]
    snippets = musdb.make_snippets(
        [spectrograms[i] for i in order], length=WINDOW_FRAMES, stride=config.snippet_stride
    )
    num_joint = int(np.sum(snippets.song_index < len(paired)))
    # float16 halves the pools (the full MUSDB18 train set is about 12 GB of float32
    # snippets); log1p magnitudes keep a relative precision of 1e-3, and batches are
    # gathered as float32.
    half = {name: getattr(snippets, name).astype(np.float16) for name in CHANNELS}
    snippets = musdb.SnippetSet(song_index=snippets.song_index, **half)
    return AudioData(snippets, num_joint, tuple(names[i] for i in order), test_tracks)


def load_data(config: AudioSeparationConfig) -> AudioData:
    """Decodes (or reads from the cache) every training song's spectrograms."""
    audio_io.check_ffmpeg("decoding MUSDB18")
    musdb.check_layout(config.musdb_root, "--musdb_root", config.is_wav)
    train = musdb.list_tracks(config.musdb_root, "train", config.is_wav)
    cache = musdb.SpectrogramCache(
        config.cache_dir or os.path.join(config.out_path, "musdb_cache"), SETTINGS
    )
    spectrograms = [cache.load_or_compute(t) for t in tqdm.tqdm(train, desc="spectrograms")]
    test = musdb.list_tracks(config.musdb_root, "test", config.is_wav)
    return build_data(config, spectrograms, [t.name for t in train], test)


def spectrogram_grid(step: trainer.DistributedStep, data: AudioData, count: int = 4) -> np.ndarray:
    """[H, W, 1] rows of mixture | accompaniment | vocals estimates | true
    accompaniment | true vocals for fixed paired snippets (high frequencies on top)."""
    rows = slice(0, min(count, data.num_joint_snippets))
    estimates = step.updates.translate(data.snippets.mixture[rows], seed=0)
    panels = [data.snippets.mixture[rows], estimates[..., :1], estimates[..., 1:],
              data.snippets.accompaniment[rows], data.snippets.vocals[rows]]
    scale = max(float(np.max(data.snippets.mixture[rows])), 1e-6)
    strip = np.concatenate(panels, axis=2)[:, ::-1] / scale
    return images.image_grid(np.clip(strip, 0.0, 1.0), columns=1)


def build_trainer(
    config: AudioSeparationConfig, data: AudioData, strategy: tf.distribute.Strategy
) -> trainer.Trainer:
    gan_config = config.gan_config()
    step = common.build_step(
        config, strategy, gan_config, PARTITION,
        lambda: gan.build_models(
            gan_config,
            PARTITION,
            SAMPLE_SHAPE,
            make_generator=lambda: specs.construct(generator_spec(config)),
            make_discriminator=lambda name: ConvDiscriminator(filters=config.disc_channels, name=name),
        ),
    )
    observations = sources.from_aligned(data.parts(), data.num_joint_snippets, CHANNELS)
    pools = sources.training_streams(observations, step.updates.data_streams())
    return trainer.Trainer(
        step,
        streams.streams_dataset_fn(pools, config.batch_size, config.seed),
        config.run_dir,
        config.loop_config(),
        image_summary_fn=lambda: spectrogram_grid(step, data),
    )


def mask_predictor(separator: MaskingSeparator, nz: int, seed: int = 0):
    """`windows [B, 256, 128, 1] -> masks` of a separator in inference mode. Every
    window gets the same seeded noise row, so a song separates the same way every
    time, however its windows are batched (as in the exported SavedModel)."""

    def predict(windows):
        window_noise = noise.repeated_noise(len(windows), nz, seed)
        return separator.mask(tf.constant(windows, tf.float32), window_noise, training=False).numpy()

    return predict


def evaluate(config: AudioSeparationConfig, data: AudioData, loop: trainer.Trainer) -> tuple[dict, dict]:
    """BSS Eval v4 of every test song (or the first --max_eval_songs), one song at a
    time (each decoded once); returns the aggregated metrics and the first song's
    mixture and estimates (for the audio summaries)."""
    predict = mask_predictor(loop.gan_step.models.generator, config.nz, config.seed)
    per_track, first = {}, {}
    for track in tqdm.tqdm(data.test_tracks[: config.max_eval_songs or None], desc="test songs"):
        stems = musdb.decode_stems(track)
        estimates = separation.separate(
            stems["mixture"], track.rate, predict, SETTINGS, config.griffin_lim_iterations
        )
        per_track[track.name] = separation_metrics.evaluate_track(
            musdb.source_audio(stems), estimates, track.rate, config.eval_window_seconds,
            config.eval_hop_seconds, track_name=track.name,
        )
        if not first:
            first = {"name": track.name, "rate": track.rate, "mixture": stems["mixture"], **estimates}
    summary = separation_metrics.aggregate(
        per_track, config.eval_window_seconds, config.eval_hop_seconds
    )
    metrics = {
        f"{source}/{metric}/{statistic}": value
        for source, by_metric in summary["sources"].items()
        for metric, statistics in by_metric.items()
        for statistic, value in statistics.items()
        if statistic != "tracks"
    }
    metrics.update(
        eval_window_seconds=summary["window_seconds"],
        eval_hop_seconds=summary["hop_seconds"],
        num_test_songs=len(per_track),
        per_song={name: {src: {m: float(np.median(v)) if len(v) else None for m, v in by_metric.items()}
                         for src, by_metric in sources.items()}
                  for name, sources in per_track.items()},
    )
    return metrics, first


def write_audio_summaries(loop: trainer.Trainer, song: dict, step: int, seconds: float = 30.0):
    """A test song's mixture and estimates (up to `seconds`) in TensorBoard."""
    if not song:
        return
    length = int(seconds * song["rate"])
    with loop.writer.as_default(step=step):
        for label in ("mixture", *SOURCES):
            clip = np.clip(np.asarray(song[label], np.float32)[None, :length], -1.0, 1.0)
            tf.summary.audio(f"separation/{label}", clip, song["rate"], max_outputs=1,
                             description=f"{song['name']}: first {seconds:g} s")


def generator_spec(config: AudioSeparationConfig) -> specs.GeneratorSpec:
    """The masking separator, with the STFT and window it was trained on."""
    return specs.GeneratorSpec(
        "masking_separator", {"ngf": config.ngf}, [[*SAMPLE_SHAPE[:2], 1], [config.nz]],
        config.nz, config.seed, "separation",
        {"spectrogram": dataclasses.asdict(SETTINGS), "window_frames": WINDOW_FRAMES},
    )


def load_separator(run_dir: str) -> tuple[MaskingSeparator, int, int]:
    """(separator, nz, seed) of a finished run folder: its generator.json and weights
    (or, for older runs, separator.json)."""
    spec = (specs.read(run_dir) if os.path.isfile(os.path.join(run_dir, specs.SPEC_FILE))
            else legacy_specs.legacy_spec(run_dir, AudioSeparationConfig.EXPERIMENT))
    expected = {"spectrogram": dataclasses.asdict(SETTINGS), "window_frames": WINDOW_FRAMES}
    if spec.serves != "separation" or any(spec.data.get(k) != v for k, v in expected.items()):
        raise ValueError(
            f"--run_dir {run_dir!r} does not hold a separator of this version (expected a "
            f"generator serving separation with {expected})"
        )
    return specs.load(run_dir, spec), spec.nz, spec.seed


def separate_file(run_dir: str, path: str, out_dir: str, griffin_lim_iterations: int = 0) -> dict:
    """Separates one audio file of any rate and channel count with a trained run;
    writes `vocals.wav` and `accompaniment.wav` (input rate and channels) to out_dir
    and returns their paths."""
    separator, nz, seed = load_separator(run_dir)
    audio, rate = audio_io.read_audio(path)
    estimates = separation.separate(
        audio, rate, mask_predictor(separator, nz, seed), SETTINGS, griffin_lim_iterations
    )
    os.makedirs(out_dir, exist_ok=True)
    outputs = {}
    for source, signal in estimates.items():
        outputs[source] = os.path.join(out_dir, f"{source}.wav")
        audio_io.write_audio(outputs[source], signal, rate)
    return outputs


def _evaluate_and_listen(config: AudioSeparationConfig, data: AudioData, loop: trainer.Trainer) -> dict:
    """`evaluate`, with the first test song's mixture and estimates in TensorBoard."""
    metrics, song = evaluate(config, data, loop)
    write_audio_summaries(loop, song, int(loop.step.numpy()))
    return metrics


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=_evaluate_and_listen,
    generator_spec=lambda config, data: generator_spec(config),
    details=lambda config, data: dict(
        variant=config.variant.value,
        num_joint_songs=config.num_joint_songs,
        paired_songs=list(data.song_names[: config.num_joint_songs]),
        num_training_snippets=len(data.snippets),
        num_joint_snippets=data.num_joint_snippets,
    ),
    metric_keys=lambda config: HEADLINE_METRICS,
    write_outputs=lambda config, data, loop, metrics: None,
)
