r"""Trains and evaluates FactorGAN (or a baseline) on your own vector data in parts.

  python -m trainers.arrays --paired=data/arrays/pairs.npz \
      --unpaired=x=data/arrays/only_x.npy,data/arrays/only_y.npz \
      --val_npz=data/arrays/val.npz --steps=10000 --experiment_name=demo

Files, part names and checks: tf_factorgan/data/arrays.py; the variants and what each
uses of the data: tf_factorgan/experiments/arrays.py; a walk-through:
docs/own_data_arrays.md. Re-running the same command resumes from the last
checkpoint; Ctrl-C saves and exits.
"""

from tf_factorgan.cli import training
from tf_factorgan.experiments import arrays

run = training.experiment_command(
    arrays.ArraysConfig,
    arrays.TASK,
    lambda m: (f"FD joint {m['fd_joint']:.4f}, "
               + ", ".join(f"FD {name} {m[f'fd_{name}']:.4f}" for name in m["parts"])
               + f", dependency distance {m['dependency_distance']:.4f}"),
    (arrays.SAMPLES_FILE, "generator.weights.h5"),
    __doc__,
)


if __name__ == "__main__":
    run()
