"""Separates a song into vocals and accompaniment with a trained run.

  python -m trainers.separate song.mp3 -o separated/ --run_dir=runs/audio_separation/factorgan

Any format soundfile or ffmpeg reads, any sample rate and channel count: the outputs
(`vocals.wav`, `accompaniment.wav`) have the input's rate, length and channels. The
model is mono: its mask, computed from the mono downmix, is applied to every channel's
own spectrogram, which keeps the stereo image.
"""

from absl import app, flags

from tf_factorgan import precision
from tf_factorgan.cli import command
from tf_factorgan.config import DATA, EVALUATION, OUTPUT
from tf_factorgan.experiments import audio_separation

flags.DEFINE_string("output_dir", None, "Folder for vocals.wav and accompaniment.wav.", short_name="o")
flags.DEFINE_string("run_dir", "runs/audio_separation/factorgan",
                    "A finished trainers.audio_separation run (generator.weights.h5, generator.json).")
flags.DEFINE_integer("griffin_lim_iterations", 0, "Griffin-Lim iterations after the mixture-phase inversion.")
flags.DEFINE_enum("precision", precision.AUTO, precision.PRECISIONS,
                  "Compute precision of the separator: auto (bfloat16 where the hardware has "
                  "native bfloat16, else float32), float32 or bfloat16.")
flags.mark_flag_as_required("output_dir")
command.group(DATA, "run_dir")
command.group(EVALUATION, "griffin_lim_iterations", "precision")
command.group(OUTPUT, "output_dir")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("give exactly one audio file: python -m trainers.separate SONG -o DIR")
    try:
        outputs = audio_separation.separate_file(
            FLAGS.run_dir, argv[1], FLAGS.output_dir, FLAGS.griffin_lim_iterations,
            FLAGS.precision)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        command.exit_with(error)
    for source, path in outputs.items():
        print(f"{source}: {path}")


def run() -> None:
    command.run_main(main, __doc__)


if __name__ == "__main__":
    run()
