r"""Trains FactorGAN or a GAN for singing voice separation on MUSDB18, or on the user's
own song folders, and scores the test songs with BSS Eval v4.

  python -m trainers.audio_separation --musdb_root=/data/musdb18 --num_joint_songs=10
  python -m trainers.audio_separation --musdb_root=/data/musdb18 --variant=gan \
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

from tf_factorgan.audio.windows import SOURCES
from tf_factorgan.cli import command, training
from tf_factorgan.experiments import audio_separation

training.define(audio_separation.AudioSeparationConfig)


def _headline(metrics: dict) -> str:
    if not metrics.get("num_test_songs"):
        return "no test songs scored (give --test_songs_dir)"
    return ", ".join(
        f"{source} SDR {metrics[f'{source}/SDR/median']:.2f} dB"
        for source in SOURCES if f"{source}/SDR/median" in metrics
    ) + " (median over songs of the median over frames)"


def main(argv):
    del argv
    config = training.settings_from_flags(audio_separation.AudioSeparationConfig)
    # BSS Eval scores every run; MUSDB18 is read with musdb (song folders without it).
    command.require_extra("audio", "museval", *(() if config.uses_folders else ("musdb",)))
    training.run_and_report(
        audio_separation.TASK, config, _headline,
        ("generator.weights.h5",),
    )


def run() -> None:
    training.run(main, __doc__, audio_separation.AudioSeparationConfig)


if __name__ == "__main__":
    run()
