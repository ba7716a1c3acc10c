"""Trains and evaluates FactorGAN (or a baseline) on your own vector data in parts.

  python -m trainers.arrays --paired=data/arrays/pairs.npz \
      --unpaired=x=data/arrays/only_x.npy,data/arrays/only_y.npz \
      --val_npz=data/arrays/val.npz --steps=10000 --experiment_name=demo

Files, part names and checks: tf_factorgan/data/arrays.py; the variants and what each
uses of the data: tf_factorgan/experiments/arrays.py; a walk-through:
docs/own_data_arrays.md. Re-running the same command resumes from the last
checkpoint; Ctrl-C saves and exits.
"""

from absl import flags

from tf_factorgan.experiments import arrays
from tf_factorgan.cli import command

DEFAULTS = arrays.ArraysConfig()

flags.DEFINE_string("paired", DEFAULTS.paired,
                    "Paired samples: one .npz with an array [N, F_k] per part, or one .npy per "
                    "part, comma-separated (rows aligned across parts).")
flags.DEFINE_string("unpaired", DEFAULTS.unpaired,
                    "Parts observed alone, comma-separated: name=file.npy, name=file.npz (its key "
                    "name, or its only array), file.npz (every key a part) or file.npy (the part "
                    "named by the file's stem).")
flags.DEFINE_string("parts", DEFAULTS.parts,
                    "Part names in order, comma-separated (default: the paired .npz's key order, "
                    "or the .npy files' stems).")
flags.DEFINE_string("val_npz", DEFAULTS.val_npz,
                    "Paired validation samples (.npz, a key per part) for the metrics.")
flags.DEFINE_float("val_fraction", DEFAULTS.val_fraction,
                   "Without --val_npz: hold out this fraction of the paired rows (seeded by "
                   "--seed) for the metrics; 0: evaluate against the training observations.")
flags.DEFINE_enum("variant", DEFAULTS.variant, sorted(arrays.VARIANTS),
                  "gan: one joint discriminator (paired rows only); factorgan: marginal "
                  "discriminators (all observations) and D_P / D_Q; factorgan_no_cp: no D_P.")
flags.DEFINE_integer("generator_hidden", DEFAULTS.generator_hidden,
                     f"Generator hidden units (0: max({arrays.MIN_HIDDEN}, "
                     f"{arrays.HIDDEN_PER_FEATURE} x all features)).")
flags.DEFINE_integer("disc_hidden", DEFAULTS.disc_hidden,
                     f"Hidden units of every discriminator (0: max({arrays.MIN_HIDDEN}, "
                     f"{arrays.HIDDEN_PER_FEATURE} x its input features)).")
flags.DEFINE_integer("eval_samples", DEFAULTS.eval_samples, "Generated samples for the final metrics.")
command.define_training_flags(DEFAULTS)


def main(argv):
    del argv
    config = command.config_from_flags(arrays.ArraysConfig)
    command.run_and_report(
        arrays.TASK,
        config,
        lambda m: (f"FD joint {m['fd_joint']:.4f}, "
                   + ", ".join(f"FD {name} {m[f'fd_{name}']:.4f}" for name in m["parts"])
                   + f", dependency distance {m['dependency_distance']:.4f}"),
        (arrays.SAMPLES_FILE, "generator.weights.h5"),
    )


def run() -> None:
    command.run_main(main)


if __name__ == "__main__":
    run()
