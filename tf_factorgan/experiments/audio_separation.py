"""Singing voice separation on MUSDB18 or the user's own folders (FactorGAN paper,
appendix A.2).

A sample is a 256-bin x 128-frame snippet with three channels: the mixture, the
accompaniment and the vocals (log1p magnitudes, `data/musdb.py`). The generator
(`models/masking.py`) maps the mixture and noise to the two sources through a mask.

  factorgan  conditional FactorGAN: marginal discriminators for accompaniment and for
             vocals (fed every observation of their source, paired or not), D_P / D_Q
             on (accompaniment, vocals) as 2 channels (D_P: the paired songs); the
             generator separates every observed mixture. No discriminator sees the
             mixture: the mask makes the sources add up to it.
  factorgan_no_cp
             the same without D_P (the sources taken as independent).
  gan        one discriminator on the two source channels of the paired songs; the
             generator separates only the paired songs' mixtures.

Data (`load_data`), as `sources.Observations` of the parts (mixture, accompaniment,
vocals):
  --musdb_root       the paired songs are the first --num_joint_songs of a seeded
                     shuffle of MUSDB18's training songs; the other songs' mixtures,
                     accompaniments and vocals are the unpaired observations
                     (simulated incompleteness, as in the paper).
  --paired_songs_dir every song folder there is paired (`data/song_folders.py`);
                     --unpaired_{mixtures,accompaniment,vocals}_dir add recordings of
                     one part each; --test_songs_dir holds the songs to score.
Evaluation separates every test song whole (`audio/separation.py`) and scores it with
BSS Eval v4 (`eval/separation_metrics.py`).

Output under `<out_path>/audio_separation/<experiment_name>/`:
  checkpoints/, events*   resumable state, TensorBoard (losses, spectrograms, audio, metrics)
  generator.weights.h5    final separator weights, with generator.json (its spec),
                          which `python -m trainers.separate --run_dir=...` loads
  metrics.json            SDR/SIR/SAR per source (median and mean over songs) and settings
"""

import dataclasses
import os
from typing import Callable, ClassVar

import numpy as np
import tensorflow as tf
import tqdm

from tf_factorgan import gan, images, layout, noise, predictor, trainer
from tf_factorgan import precision as precision_lib
from tf_factorgan.audio import io as audio_io
from tf_factorgan.audio import separation
from tf_factorgan.audio.spectrogram import SpectrogramSettings
from tf_factorgan.audio.windows import ACCOMPANIMENT, SOURCES, VOCALS, WINDOW_FRAMES
from tf_factorgan.data import musdb, song_folders, sources, spectrogram_cache, streams
from tf_factorgan.config import DATA, EVALUATION, MODEL, SettingError, ref, setting
from tf_factorgan.eval import separation_metrics
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition
from tf_factorgan.models.conv import ConvDiscriminator
from tf_factorgan.models import legacy_specs, specs, unet
from tf_factorgan.models.masking import MaskingSeparator
from tf_factorgan.pairs_loss import PairsLoss

SETTINGS = SpectrogramSettings()
# Channels of a sample: the generator's input, then the two sources in the order of
# MaskingSeparator's output (the mask's share, the accompaniment, first).
CHANNELS = ("mixture", ACCOMPANIMENT, VOCALS)
PARTITION = Partition((1, 1, 1))
SAMPLE_SHAPE = (SETTINGS.num_bins, WINDOW_FRAMES, len(CHANNELS))
# What the trainer prints and TensorBoard shows first.
HEADLINE_METRICS = tuple(f"{source}/SDR/median" for source in SOURCES)


# The folder settings, field -> what the folder holds (`data/song_folders.py`).
SONG_DIRS = ("paired_songs_dir", "test_songs_dir")
RECORDING_DIRS = {"unpaired_mixtures_dir": "mixture", "unpaired_accompaniment_dir": ACCOMPANIMENT,
                  "unpaired_vocals_dir": VOCALS}


@dataclasses.dataclass(frozen=True)
class AudioSeparationConfig(common.TrainingSettings, PairsLoss, unet.UNetSettings):
    """Settings of one separation run (each field's help says what it sets): MUSDB18
    (musdb_root) or the user's own folders (paired_songs_dir with the optional
    unpaired_*_dir and test_songs_dir, `data/song_folders.py`). The separator's U-Net
    has no per-pixel noise maps by default (noise_stages 0: the bottleneck noise alone,
    as the paper). The pairs loss (`pairs_loss.PairsLoss`) fits log1p magnitudes of the
    paired snippets' sources."""

    EXPERIMENT: ClassVar[str] = "audio_separation"
    HPARAMS_FIRST: ClassVar[tuple[str, ...]] = (
        "variant", "num_joint_songs", "recon_loss", "seed")

    musdb_root: str = setting("data/musdb18", "MUSDB18 folder with train/ and test/.", DATA)
    is_wav: bool = setting(False, "The wav release (folders of stem .wav files).", DATA)
    paired_songs_dir: str = setting(
        "", "Own data instead of MUSDB18: one sub-folder per song with vocals.<ext> and "
        "accompaniment.<ext> or other stems (summed), optionally mixture.<ext>.", DATA)
    unpaired_mixtures_dir: str = setting("", "Full mixes without stems (recursive), for the "
                                         "generator's inputs.", DATA)
    unpaired_accompaniment_dir: str = setting("", "Accompaniment recordings alone (recursive), "
                                              "for its marginal discriminator.", DATA)
    unpaired_vocals_dir: str = setting("", "Vocal recordings alone (recursive), for its marginal "
                                       "discriminator.", DATA)
    test_songs_dir: str = setting("", "Songs to separate and score, laid out as "
                                  "{paired_songs_dir} (optional).", DATA)
    num_joint_songs: int = setting(10, "MUSDB18: paired training songs (the first N of a seeded "
                                   "shuffle).", DATA, low=1)
    noise_stages: int = 0
    disc_channels: int = setting(32, "First-layer filters of every discriminator.", MODEL, low=1)
    steps: int = 40000
    cache_dir: str = setting(
        "", "Preprocessed spectrograms, keyed on the audio files' bytes (default: "
        "{out_path}/musdb_cache, or {out_path}/audio_cache for song folders).", DATA)
    snippet_stride: int = setting(64, "Frames between training snippets.", DATA, low=1)
    eval_window_seconds: float = setting(1.0, "BSS Eval window (1 s: SiSEC 2018; the original "
                                         "code used 15).", EVALUATION, above=0)
    eval_hop_seconds: float = setting(1.0, "BSS Eval hop.", EVALUATION, above=0)
    max_eval_songs: int = setting(0, "Score only the first N test songs (0 = all).", EVALUATION,
                                  low=0, note="0 = all")
    griffin_lim_iterations: int = setting(0, "Griffin-Lim iterations after the mixture-phase "
                                          "inversion.", EVALUATION, low=0)

    def __post_init__(self):
        super().__post_init__()
        PairsLoss.__post_init__(self)
        if self.needs_probabilities:
            raise SettingError(f"{{recon_loss}}={self.recon_loss} with {{likelihood}}={self.likelihood} "
                               "needs class probabilities; separation outputs magnitudes: use "
                               "l1, l2, or a gaussian or laplace likelihood")
        self._check_data_flags()

    def _check_data_flags(self):
        """MUSDB18 or the folders, not a mix of both."""
        folder_flags = [name for name in (*SONG_DIRS, *RECORDING_DIRS) if getattr(self, name)]
        if not self.paired_songs_dir:
            if folder_flags:
                raise SettingError(f"{ref(folder_flags[0])} needs {{paired_songs_dir}} (the folder "
                                   "data replaces {musdb_root} and needs paired songs)")
            return
        defaults = {f.name: f.default for f in dataclasses.fields(AudioSeparationConfig)}
        musdb_flags = [name for name in ("musdb_root", "is_wav", "num_joint_songs")
                       if getattr(self, name) != defaults[name]]
        if musdb_flags:
            raise SettingError(
                f"{ref(musdb_flags[0])} applies to MUSDB18, not to {{paired_songs_dir}} (every song "
                "there is paired); give either {musdb_root} or the song folders")

    @property
    def uses_folders(self) -> bool:
        return bool(self.paired_songs_dir)

    @property
    def spectrogram_cache_dir(self) -> str:
        default = "audio_cache" if self.uses_folders else "musdb_cache"
        return self.cache_dir or os.path.join(self.out_path, default)

    def gan_config(self) -> gan.GanConfig:
        return super().gan_config(conditional=True, condition_visible=False,
                                  pairs_loss=PairsLoss.of(self))


@dataclasses.dataclass(frozen=True)
class EvalSong:
    """A song to separate and score: `load() -> (mixture float32 [samples, channels],
    {vocals, accompaniment} -> the true sources of the same shape, rate)`, decoded
    when called (one song in memory at a time)."""

    name: str
    load: Callable[[], tuple]


def _musdb_test_audio(track) -> tuple:
    stems = musdb.decode_stems(track)
    return stems["mixture"], musdb.source_audio(stems), track.rate


def _folder_test_audio(song: song_folders.SongFolder) -> tuple:
    audio, rate = song_folders.decode_song(song)
    return audio["mixture"], {source: audio[source] for source in SOURCES}, rate


@dataclasses.dataclass(frozen=True)
class AudioData:
    """observations: float16 snippets [N, 256, 128, 1] of the parts CHANNELS, paired
    and unpaired; paired_songs: the songs of the paired snippets; test_songs: the
    songs to score; durations: songs and seconds per source (`describe_durations`)."""

    observations: sources.Observations
    paired_songs: tuple[str, ...]
    test_songs: list
    durations: dict

    def describe(self) -> str:
        """Two lines for the terminal: the snippets, and the audio they come from."""
        return f"{self.observations.describe()}\n{describe_durations(self.durations)}"


def _half(snippets: np.ndarray) -> np.ndarray:
    # float16 halves the pools (the full MUSDB18 train set is about 12 GB of float32
    # snippets); log1p magnitudes keep a relative precision of 1e-3, and batches are
    # gathered as float32.
    return snippets.astype(np.float16)


def _seconds(spectrograms: list) -> float:
    return round(sum(song_folders.spectrogram_seconds(len(s), SETTINGS) for s in spectrograms), 2)


def describe_durations(durations: dict) -> str:
    """'audio: paired 3 songs 9.0 s, unpaired vocals 2 recordings 40.0 s, ...'."""
    parts = [f"{source.replace('_', ' ')} {entry['count']} {entry['unit']}"
             f"{'' if entry['count'] == 1 else 's'} {entry['seconds']:.1f} s"
             for source, entry in durations.items()]
    return "audio: " + ", ".join(parts)


def _duration(count: int, unit: str, seconds: float) -> dict:
    """count songs or recordings (unit "song" or "recording") of `seconds` in all."""
    return {"count": count, "unit": unit, "seconds": round(float(seconds), 2)}


def build_data(config: AudioSeparationConfig, spectrograms: list[dict], names, test_tracks) -> AudioData:
    """MUSDB18: orders the songs paired first, cuts snippets and keeps the first
    --num_joint_songs songs' snippets paired, the rest of every part unpaired."""
    paired, _ = musdb.split_songs(len(spectrograms), config.num_joint_songs, config.seed)
    paired = list(paired)
    order = paired + [i for i in range(len(spectrograms)) if i not in paired]
    snippets = musdb.make_snippets(
        [spectrograms[i] for i in order], length=WINDOW_FRAMES, stride=config.snippet_stride
    )
    num_joint = int(np.sum(snippets.song_index < len(paired)))
    parts = [_half(getattr(snippets, name)) for name in CHANNELS]
    observations = sources.from_aligned(parts, num_joint, CHANNELS)
    rest = [spectrograms[i]["mixture"] for i in order[len(paired):]]
    durations = {"paired": _duration(len(paired), "song", _seconds([spectrograms[i]["mixture"] for i in paired]))}
    for name in CHANNELS:
        durations[f"unpaired_{name}"] = _duration(len(rest), "song", _seconds(rest))
    durations["test"] = _duration(len(test_tracks), "song", sum(t.duration or 0.0 for t in test_tracks))
    test_songs = [EvalSong(t.name, lambda t=t: _musdb_test_audio(t)) for t in test_tracks]
    return AudioData(observations, tuple(names[i] for i in paired), test_songs, durations)


def _load_musdb(config: AudioSeparationConfig) -> AudioData:
    """Decodes (or reads from the cache) every training song's spectrograms."""
    audio_io.check_ffmpeg("decoding MUSDB18")
    musdb.check_layout(config.musdb_root, musdb.ROOT_SETTING, config.is_wav)
    train = musdb.list_tracks(config.musdb_root, "train", config.is_wav)
    cache = spectrogram_cache.SpectrogramCache(config.spectrogram_cache_dir, SETTINGS)
    spectrograms = [musdb.cached_track_spectrograms(cache, t) for t in tqdm.tqdm(train, desc="spectrograms")]
    test = musdb.list_tracks(config.musdb_root, "test", config.is_wav)
    return build_data(config, spectrograms, [t.name for t in train], test)


def _listing(listing: song_folders.Listing, setting: str) -> list:
    note = listing.ignored_note(setting)
    if note:
        print(note)
    return listing.items


def _load_folders(config: AudioSeparationConfig) -> AudioData:
    """Every song and recording of the folders, checked and through the cache: the
    paired songs' snippets, each unpaired folder's snippets, the test songs. All
    folders are listed (and their layout checked) before any file is decoded."""
    cache = spectrogram_cache.SpectrogramCache(config.spectrogram_cache_dir, SETTINGS)
    cut = lambda frames: musdb.cut_snippets(  # noqa: E731
        frames, WINDOW_FRAMES, config.snippet_stride, np.float16)
    paired = _listing(song_folders.list_songs(config.paired_songs_dir, ref("paired_songs_dir")),
                      ref("paired_songs_dir"))
    recordings = {field: _listing(song_folders.list_recordings(getattr(config, field), ref(field)),
                                  ref(field))
                  for field in RECORDING_DIRS if getattr(config, field)}
    test = (_listing(song_folders.list_songs(config.test_songs_dir, ref("test_songs_dir")),
                     ref("test_songs_dir")) if config.test_songs_dir else [])

    spectrograms = [song_folders.song_spectrograms(cache, s) for s in tqdm.tqdm(paired, desc="paired songs")]
    frames = {name: [song[name] for song in spectrograms] for name in CHANNELS}
    del spectrograms
    durations = {"paired": _duration(len(paired), "song", _seconds(frames["mixture"]))}
    for field, paths in recordings.items():
        part = RECORDING_DIRS[field]
        recorded = [song_folders.recording_spectrogram(cache, p, ref(field))
                    for p in tqdm.tqdm(paths, desc=f"unpaired {part}")]
        frames[part] += recorded
        durations[f"unpaired_{part}"] = _duration(len(paths), "recording", _seconds(recorded))
    # One array per part, the paired snippets first: the marginal stream of a part
    # (its paired and unpaired snippets) is then a view of it, not a copy.
    num_paired = sum(len(musdb.snippet_starts(len(f), WINDOW_FRAMES, config.snippet_stride))
                     for f in frames["mixture"][: len(paired)])
    pools = [cut(frames.pop(name)) for name in CHANNELS]
    if test:
        # Checked (and measured) now, not after training; evaluation decodes them again.
        test_frames = [song_folders.song_spectrograms(cache, s)["mixture"]
                       for s in tqdm.tqdm(test, desc="test songs (check)")]
        durations["test"] = _duration(len(test), "song", _seconds(test_frames))
    observations = sources.Observations(
        tuple(pool[:num_paired] for pool in pools),
        tuple(pool[num_paired:] if len(pool) > num_paired else None for pool in pools), CHANNELS)
    test_songs = [EvalSong(s.name, lambda s=s: _folder_test_audio(s)) for s in test]
    return AudioData(observations, tuple(s.name for s in paired), test_songs, durations)


def load_data(config: AudioSeparationConfig) -> AudioData:
    """MUSDB18 (--musdb_root) or the song folders (--paired_songs_dir ...), as
    `AudioData`; prints what the data holds."""
    data = _load_folders(config) if config.uses_folders else _load_musdb(config)
    print(data.describe())
    return data


def spectrogram_grid(step: trainer.DistributedStep, data: AudioData, count: int = 4) -> np.ndarray:
    """[H, W, 1] rows of mixture | accompaniment | vocals estimates | true
    accompaniment | true vocals for fixed paired snippets (high frequencies on top)."""
    mixture, accompaniment, vocals = (np.asarray(p[:count], np.float32) for p in data.observations.paired)
    estimates = step.updates.translate(mixture, seed=0)
    panels = [mixture, estimates[..., :1], estimates[..., 1:], accompaniment, vocals]
    scale = max(float(np.max(mixture)), 1e-6)
    strip = np.concatenate(panels, axis=2)[:, ::-1] / scale
    return images.image_grid(np.clip(strip, 0.0, 1.0), columns=1)


# Proxy MR's predictor stage validates on every VALIDATION_EVERY-th paired snippet,
# held out from its training (the test songs are whole songs, scored after training).
VALIDATION_EVERY = 10


def make_predictor_fn(config: AudioSeparationConfig, data: AudioData):
    """`() -> predictor` for proxy MR, after running (or finding) the predictor stage on
    the paired snippets."""
    paired = [np.asarray(p) for p in data.observations.paired]
    held = np.zeros(len(paired[0]), bool)
    held[::VALIDATION_EVERY] = True
    if held.all():
        raise ValueError(f"proxy MR's predictor needs at least 2 paired snippets, got {len(held)}")
    training = sources.Observations(tuple(p[~held] for p in paired), (None,) * len(CHANNELS), CHANNELS)
    joint = sources.training_streams(training, {layout.JOINT: None})[layout.JOINT]
    val = np.concatenate([p[held] for p in paired], axis=-1).astype(np.float32)
    return predictor.from_stage(
        generator_spec(config), PARTITION, SAMPLE_SHAPE, joint, val, predictor.StageSettings.of(config),
        os.path.join(config.out_path, "predictors"), paired)


def build_trainer(
    config: AudioSeparationConfig, data: AudioData, strategy: tf.distribute.Strategy
) -> trainer.Trainer:
    gan_config = config.gan_config()
    make_predictor = make_predictor_fn(config, data) if config.uses_predictor else None
    step = common.build_step(
        config, strategy, gan_config, PARTITION,
        lambda: gan.build_models(
            gan_config,
            PARTITION,
            SAMPLE_SHAPE,
            make_generator=lambda: specs.construct(generator_spec(config)),
            make_discriminator=lambda name: ConvDiscriminator(filters=config.disc_channels, name=name),
            make_predictor=make_predictor,
        ),
    )
    pools = sources.training_streams(data.observations, step.updates.data_streams())
    return trainer.Trainer(
        step,
        streams.streams_dataset_fn(pools, config.batch_size, config.seed),
        config.run_dir,
        config,
        image_summary_fn=lambda: spectrogram_grid(step, data),
        # --eval_every: the test songs' BSS Eval during training (the headline curves).
        eval_fn=lambda at_step: {key: value for key, value in evaluate(config, data, step)[0].items()
                                 if key in HEADLINE_METRICS and value is not None},
    )


def mask_predictor(separator: MaskingSeparator, nz: int, seed: int = 0):
    """`windows [B, 256, 128, 1] -> masks` of a separator in inference mode. Every
    window gets the same seeded noise row, so a song separates the same way every
    time, however its windows are batched (as in the exported SavedModel). The
    network runs as one compiled graph: op by op (eagerly) it separated songs slower
    and without a graph's fusions (docs/benchmarks_and_tests.md, "Precision and PyTorch")."""

    @tf.function(input_signature=[tf.TensorSpec([None, *SAMPLE_SHAPE[:2], 1], tf.float32)])
    def masks(windows):
        window_noise = noise.repeated_noise(tf.shape(windows)[0], nz, seed)
        return tf.cast(separator.mask(windows, window_noise, training=False), tf.float32)

    def predict(windows):
        return masks(tf.constant(windows, tf.float32)).numpy()

    return predict


def evaluate(config: AudioSeparationConfig, data: AudioData, step: trainer.DistributedStep) -> tuple[dict, dict]:
    """BSS Eval v4 of every test song (or the first --max_eval_songs), one song at a
    time (each decoded once); returns the aggregated metrics and the first song's
    mixture and estimates (for the audio summaries). Without test songs (folders
    without --test_songs_dir) the metrics only say so."""
    predict = mask_predictor(step.models.generator, config.nz, config.seed)
    per_track, first = {}, {}
    for song in tqdm.tqdm(data.test_songs[: config.max_eval_songs or None], desc="test songs"):
        mixture, references, rate = song.load()
        estimates = separation.separate(
            mixture, rate, predict, SETTINGS, config.griffin_lim_iterations
        )
        per_track[song.name] = separation_metrics.evaluate_track(
            references, estimates, rate, config.eval_window_seconds,
            config.eval_hop_seconds, track_name=song.name,
        )
        if not first:
            first = {"name": song.name, "rate": rate, "mixture": mixture, **estimates}
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
        "masking_separator", {"ngf": config.ngf, "noise_channels": 2, "noise_stages": config.noise_stages,
                              "noise_map_channels": config.noise_map_channels},
        [[*SAMPLE_SHAPE[:2], 1], [config.nz]],
        config.nz, config.seed, "separation",
        {"spectrogram": dataclasses.asdict(SETTINGS), "window_frames": WINDOW_FRAMES},
    )


def load_separator(run_dir: str, compute: str = precision_lib.FLOAT32
                   ) -> tuple[MaskingSeparator, int, int]:
    """(separator, nz, seed) of a finished run folder: its generator.json and weights
    (or, for older runs, separator.json), computing in `compute` (a --precision)."""
    spec = (specs.read(run_dir) if os.path.isfile(os.path.join(run_dir, specs.SPEC_FILE))
            else legacy_specs.legacy_spec(run_dir, AudioSeparationConfig.EXPERIMENT))
    expected = {"spectrogram": dataclasses.asdict(SETTINGS), "window_frames": WINDOW_FRAMES}
    if spec.serves != "separation" or any(spec.data.get(k) != v for k, v in expected.items()):
        raise SettingError(
            f"{{run_dir}} {run_dir!r} does not hold a separator of this version (expected a "
            f"generator serving separation with {expected})"
        )
    with precision_lib.policy(compute):
        return specs.load(run_dir, spec), spec.nz, spec.seed


def separate_file(run_dir: str, path: str, out_dir: str, griffin_lim_iterations: int = 0,
                  compute: str = precision_lib.AUTO) -> dict:
    """Separates one audio file of any rate and channel count with a trained run,
    computing in `compute` (a --precision); writes `vocals.wav` and
    `accompaniment.wav` (input rate and channels) to out_dir and returns their paths."""
    separator, nz, seed = load_separator(run_dir, compute)
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
    metrics, song = evaluate(config, data, loop.gan_step)
    write_audio_summaries(loop, song, int(loop.step.numpy()))
    return metrics


def details(config: AudioSeparationConfig, data: AudioData) -> dict:
    """What metrics.json and TensorBoard's config keep of the data: the paired songs,
    snippet counts per source (`Observations.summary`) and the songs' durations."""
    observations = data.observations
    result = dict(
        variant=config.variant,
        data_source="folders" if config.uses_folders else "musdb18",
        num_joint_songs=len(data.paired_songs),
        paired_songs=list(data.paired_songs),
        num_joint_snippets=observations.num_paired,
        **observations.summary(),
        durations=data.durations,
    )
    if not config.uses_folders:  # every MUSDB18 song gives one snippet of each part
        result["num_training_snippets"] = observations.num_paired + observations.num_unpaired(0)
    return result


TASK = common.Task(
    load_data=load_data,
    build_trainer=build_trainer,
    evaluate=_evaluate_and_listen,
    generator_spec=lambda config, data: generator_spec(config),
    details=lambda config, data: details(config, data),
    metric_keys=lambda config: HEADLINE_METRICS,
    write_outputs=lambda config, data, loop, metrics: None,
)
