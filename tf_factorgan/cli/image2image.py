"""Trains conditional FactorGAN, a GAN or CycleGAN for photo -> label map translation
and reports segmentation metrics.

  python -m trainers.download_pix2pix --dataset=cityscapes --out_dir=data
  python -m trainers.image2image --model=factorgan --num_joint_samples=100
  python -m trainers.image2image --model=cyclegan --experiment_name=cyclegan

Your own images (README, "Your own data"):

  python -m trainers.image2image --dataset=folders --palette=my_classes.csv \
    --paired_a_dir=photos --paired_b_dir=labels --unpaired_a_dir=more_photos \
    --unpaired_b_dir=more_labels --val_a_dir=val_photos --val_b_dir=val_labels

Re-running the same command resumes from the last checkpoint; Ctrl-C saves and exits.
"""

from absl import flags

from tf_factorgan.data import label_encoding
from tf_factorgan.experiments import image2image, image_data
from tf_factorgan.cli import command

DEFAULTS = image2image.Image2ImageConfig()

flags.DEFINE_enum("model", DEFAULTS.model, list(image2image.MODELS),
                  "Conditional FactorGAN (with or without D_P), GAN on the paired images "
                  "(pix2pix with --recon_loss=l1), or CycleGAN on unpaired ones.")
flags.DEFINE_enum("direction", DEFAULTS.direction, list(image_data.DIRECTIONS),
                  "a_to_b: A (photo) is the input and B (label map) the output; b_to_a: the reverse.")
flags.DEFINE_enum("label_encoding", DEFAULTS.label_encoding, list(label_encoding.ENCODINGS),
                  "Label maps in the networks: colours (rgb), or one channel per class (one_hot; "
                  "a generator of label maps then outputs class probabilities).")
flags.DEFINE_bool("discrete_fakes", DEFAULTS.discrete_fakes,
                  "One-hot label maps: discriminators see each generated pixel's most probable class "
                  "one-hot, as real maps are (gradients through the probabilities), instead of the "
                  "probabilities.")
flags.DEFINE_integer("ngf", DEFAULTS.ngf, "U-Net width.")
flags.DEFINE_integer("noise_channels", DEFAULTS.noise_channels,
                     "U-Net: noise maps at the bottleneck (a projection of the noise vector).")
flags.DEFINE_integer("eval_samples", DEFAULTS.eval_samples,
                     "Outputs drawn per validation input (diversity, majority vote).")
flags.DEFINE_float("cycle_weight", DEFAULTS.cycle_weight, "CycleGAN: weight of the L1 cycle loss.")
flags.DEFINE_float("identity_weight", DEFAULTS.identity_weight,
                   "CycleGAN: identity loss weight, as a fraction of --cycle_weight.")
command.define_image_data_flags(DEFAULTS)
command.define_noise_map_flags(DEFAULTS)
command.define_pairs_loss_flags(DEFAULTS)
command.define_training_flags(DEFAULTS)


def main(argv):
    del argv
    config = command.config_from_flags(image2image.Image2ImageConfig)
    command.run_and_report(
        image2image.TASK,
        config,
        lambda m: f"MSE {m['mse']:.4f}" + (
            f", pixel accuracy {m['pixel_accuracy']:.4f}, mean IoU {m['mean_iou']:.4f}"
            if m.get("pixel_accuracy") is not None else ""),
        ("predictions.png", "generator.weights.h5"),
    )


def run() -> None:
    command.run_main(main)


if __name__ == "__main__":
    run()
