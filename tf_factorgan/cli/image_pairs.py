"""Trains FactorGAN or a GAN to generate image pairs and reports the LS metric.

  python -m trainers.download_pix2pix --dataset=edges2shoes --out_dir=data
  python -m trainers.image_pairs --dataset=edges2shoes --num_joint_samples=100
  python -m trainers.image_pairs --dataset=edges2shoes --nofactorgan --disc_channels=64 \
      --experiment_name=big_gan

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from absl import flags

from tf_factorgan.experiments import image_pairs
from tf_factorgan.cli import command

DEFAULTS = image_pairs.ImagePairsConfig()

flags.DEFINE_bool("factorgan", DEFAULTS.factorgan, "FactorGAN (else a GAN with one joint discriminator).")
flags.DEFINE_integer("ngf", DEFAULTS.ngf, "Generator width (8 * ngf channels at 4x4).")
command.define_image_data_flags(DEFAULTS)
command.define_training_flags(DEFAULTS)


def main(argv):
    del argv
    config = command.config_from_flags(image_pairs.ImagePairsConfig)
    command.run_and_report(
        image_pairs.TASK,
        config,
        lambda m: (f"LS metric {m['ls_mean']:.4f} +- {m['ls_std']:.4f} ({len(m['ls_runs'])} "
                   "runs; higher = harder to tell from real pairs, 0.25 = indistinguishable)"),
        ("samples.png", "generator.weights.h5"),
    )


def run() -> None:
    command.run_main(main)


if __name__ == "__main__":
    run()
