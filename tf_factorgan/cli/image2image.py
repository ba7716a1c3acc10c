r"""Trains conditional FactorGAN, a GAN or CycleGAN for photo -> label map translation
and reports segmentation metrics.

  python -m trainers.download_pix2pix --dataset=cityscapes --out_dir=data
  python -m trainers.image2image --variant=factorgan --num_joint_samples=100
  python -m trainers.image2image --variant=cyclegan --experiment_name=cyclegan

Your own images (docs/own_data_images.md):

  python -m trainers.image2image --dataset=folders --palette=my_classes.csv \
    --paired_a_dir=photos --paired_b_dir=labels --unpaired_a_dir=more_photos \
    --unpaired_b_dir=more_labels --val_a_dir=val_photos --val_b_dir=val_labels

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from tf_factorgan.cli import training
from tf_factorgan.experiments import image2image

run = training.experiment_command(
    image2image.Image2ImageConfig,
    image2image.TASK,
    lambda m: f"MSE {m['mse']:.4f}" + (
        f", pixel accuracy {m['pixel_accuracy']:.4f}, mean IoU {m['mean_iou']:.4f}"
        if m.get("pixel_accuracy") is not None else ""),
    ("predictions.png", "generator.weights.h5"),
    __doc__,
)


if __name__ == "__main__":
    run()
