"""factorgan-train EXPERIMENT [--flag=value ...]: trains and evaluates one experiment
(or runs the Paired MNIST grid or ablation); `factorgan-train EXPERIMENT --help` lists
its flags, by group. In a checkout, `python -m trainers.EXPERIMENT` is the same.

  factorgan-train paired_mnist --variant=factorgan_no_cp --mnist_manual_dir=mnist
  factorgan-train image2image --variant=cyclegan --experiment_name=cyclegan
"""

import importlib
import sys

from tf_factorgan.cli import command

# Experiment -> what it runs; its program is tf_factorgan.cli.<experiment>.
EXPERIMENTS = {
    "paired_mnist": "FactorGAN or a GAN on Paired MNIST (the paper, section 4.1)",
    "paper_grid": "the Paired MNIST grid of the paper's Figure 1",
    "paired_mnist_ablation": "the Paired MNIST training-choice ablation",
    "image_pairs": "(A, B) image pairs from noise, scored by the LS metric (section 4.2)",
    "image2image": "image-to-image translation from few pairs (section 4.3)",
    "audio_separation": "singing voice separation on MUSDB18 or your songs (appendix A.2)",
    "arrays": "your own vector data in parts (.npz / .npy)",
}


def usage() -> str:
    """This docstring and the experiments."""
    rows = "\n".join(f"  {name:<23}{what}" for name, what in EXPERIMENTS.items())
    return f"{__doc__.strip()}\n\nexperiments:\n{rows}\n"


def run() -> None:
    """The console script: runs the program of the experiment named first, with the
    remaining arguments as its own (its --help included)."""
    arguments = sys.argv[1:]
    if not arguments or arguments[0] in (*command.HELP_FLAGS, "--helpfull"):
        sys.stdout.write(usage())
        sys.exit(0 if arguments else 2)
    name = arguments[0]
    if name not in EXPERIMENTS:
        sys.exit(f"error: {name!r} is no experiment; give one of {', '.join(EXPERIMENTS)} "
                 "(factorgan-train --help)")
    sys.argv = [f"{sys.argv[0]} {name}", *arguments[1:]]
    importlib.import_module(f"tf_factorgan.cli.{name}").run()
