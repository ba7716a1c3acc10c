"""Trains FactorGAN or a GAN for singing voice separation on MUSDB18, or on the user's
own song folders, and scores the test songs with BSS Eval v4.

  python -m trainers.audio_separation --musdb_root=/data/musdb18 --num_joint_songs=10
  python -m trainers.audio_separation --musdb_root=/data/musdb18 --nofactorgan \
      --experiment_name=gan
  python -m trainers.audio_separation --paired_songs_dir=my/paired \
      --unpaired_vocals_dir=my/vocals --unpaired_accompaniment_dir=my/backing \
      --unpaired_mixtures_dir=my/mixes --test_songs_dir=my/test

Song folders hold one sub-folder per song with vocals.<ext> and accompaniment.<ext>
(or other stems, summed) and optionally mixture.<ext>; unpaired folders hold
recordings of one source, searched recursively (see tf_factorgan/data/song_folders.py).

Needs ffmpeg (Debian package `ffmpeg`) to decode the .stem.mp4 files (or pass
--is_wav for the wav release). Re-running the same command resumes; Ctrl-C saves and
exits. Separate any song afterwards with `python -m trainers.separate`.
"""

from absl import flags

from tf_factorgan.audio.windows import SOURCES
from tf_factorgan.experiments import audio_separation
from tf_factorgan.cli import command

DEFAULTS = audio_separation.AudioSeparationConfig()

flags.DEFINE_string("musdb_root", DEFAULTS.musdb_root, "MUSDB18 folder with train/ and test/.")
flags.DEFINE_bool("is_wav", DEFAULTS.is_wav, "The wav release (folders of stem .wav files).")
flags.DEFINE_string("paired_songs_dir", DEFAULTS.paired_songs_dir,
                    "Own data instead of MUSDB18: one sub-folder per song with vocals.<ext> and "
                    "accompaniment.<ext> or other stems (summed), optionally mixture.<ext>.")
flags.DEFINE_string("unpaired_mixtures_dir", DEFAULTS.unpaired_mixtures_dir,
                    "Full mixes without stems (recursive), for the generator's inputs.")
flags.DEFINE_string("unpaired_accompaniment_dir", DEFAULTS.unpaired_accompaniment_dir,
                    "Accompaniment recordings alone (recursive), for its marginal discriminator.")
flags.DEFINE_string("unpaired_vocals_dir", DEFAULTS.unpaired_vocals_dir,
                    "Vocal recordings alone (recursive), for its marginal discriminator.")
flags.DEFINE_string("test_songs_dir", DEFAULTS.test_songs_dir,
                    "Songs to separate and score, laid out as --paired_songs_dir (optional).")
flags.DEFINE_bool("factorgan", DEFAULTS.factorgan, "Conditional FactorGAN (else a GAN on the paired songs).")
flags.DEFINE_integer("num_joint_songs", DEFAULTS.num_joint_songs,
                     "MUSDB18: paired training songs (the first N of a seeded shuffle).")
flags.DEFINE_integer("ngf", DEFAULTS.ngf, "U-Net width.")
flags.DEFINE_integer("disc_channels", DEFAULTS.disc_channels, "First-layer filters of every discriminator.")
flags.DEFINE_string("cache_dir", DEFAULTS.cache_dir,
                    "Preprocessed spectrograms, keyed on the audio files' bytes (default: "
                    "<out_path>/musdb_cache, or <out_path>/audio_cache for song folders).")
flags.DEFINE_integer("snippet_stride", DEFAULTS.snippet_stride, "Frames between training snippets.")
flags.DEFINE_float("eval_window_seconds", DEFAULTS.eval_window_seconds,
                   "BSS Eval window (1 s: SiSEC 2018; the original code used 15).")
flags.DEFINE_float("eval_hop_seconds", DEFAULTS.eval_hop_seconds, "BSS Eval hop.")
flags.DEFINE_integer("max_eval_songs", DEFAULTS.max_eval_songs, "Score only the first N test songs (0 = all).")
flags.DEFINE_integer("griffin_lim_iterations", DEFAULTS.griffin_lim_iterations,
                     "Griffin-Lim iterations after the mixture-phase inversion.")
command.define_noise_map_flags(DEFAULTS)
command.define_pairs_loss_flags(DEFAULTS)
command.define_training_flags(DEFAULTS)


def _headline(metrics: dict) -> str:
    if not metrics.get("num_test_songs"):
        return "no test songs scored (give --test_songs_dir)"
    return ", ".join(
        f"{source} SDR {metrics[f'{source}/SDR/median']:.2f} dB"
        for source in SOURCES if f"{source}/SDR/median" in metrics
    ) + " (median over songs of the median over frames)"


def main(argv):
    del argv
    config = command.config_from_flags(audio_separation.AudioSeparationConfig)
    command.run_and_report(
        audio_separation.TASK, config, _headline,
        ("generator.weights.h5",),
    )


def run() -> None:
    command.run_main(main)


if __name__ == "__main__":
    run()
