"""`python -m trainers.paired_mnist_ablation`: runs `tf_factorgan.cli.paired_mnist_ablation` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import paired_mnist_ablation

if __name__ == "__main__":
    paired_mnist_ablation.run()
