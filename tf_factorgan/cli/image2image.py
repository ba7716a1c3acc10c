r"""Trains conditional FactorGAN, a GAN or CycleGAN for photo -> label map translation
and reports segmentation metrics.

  python -m trainers.download_pix2pix --dataset=cityscapes --out_dir=data
  python -m trainers.image2image --variant=factorgan --num_joint_samples=100
  python -m trainers.image2image --variant=cyclegan --experiment_name=cyclegan

Your own images (README, "Your own data"):

  python -m trainers.image2image --dataset=folders --palette=my_classes.csv \
    --paired_a_dir=photos --paired_b_dir=labels --unpaired_a_dir=more_photos \
    --unpaired_b_dir=more_labels --val_a_dir=val_photos --val_b_dir=val_labels

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from tf_factorgan.cli import training
from tf_factorgan.experiments import image2image

training.define(image2image.Image2ImageConfig)


def main(argv):
    del argv
    config = training.settings_from_flags(image2image.Image2ImageConfig)
    training.run_and_report(
        image2image.TASK,
        config,
        lambda m: f"MSE {m['mse']:.4f}" + (
            f", pixel accuracy {m['pixel_accuracy']:.4f}, mean IoU {m['mean_iou']:.4f}"
            if m.get("pixel_accuracy") is not None else ""),
        ("predictions.png", "generator.weights.h5"),
    )


def run() -> None:
    training.run(main, __doc__, image2image.Image2ImageConfig)


if __name__ == "__main__":
    run()
