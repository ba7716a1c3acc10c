r"""Trains FactorGAN or a GAN to generate image pairs and reports the LS metric.

  python -m trainers.download_pix2pix --dataset=edges2shoes --out_dir=data
  python -m trainers.image_pairs --dataset=edges2shoes --num_joint_samples=100
  python -m trainers.image_pairs --dataset=edges2shoes --variant=gan --disc_channels=64 \
      --experiment_name=big_gan

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from tf_factorgan.cli import training
from tf_factorgan.experiments import image_pairs

run = training.experiment_command(
    image_pairs.ImagePairsConfig,
    image_pairs.TASK,
    lambda m: (f"LS metric {m['ls_mean']:.4f} +- {m['ls_std']:.4f} ({len(m['ls_runs'])} "
               "runs; higher = harder to tell from real pairs, 0.25 = indistinguishable)"),
    ("samples.png", "generator.weights.h5"),
    __doc__,
)


if __name__ == "__main__":
    run()
