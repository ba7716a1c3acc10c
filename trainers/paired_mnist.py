"""`python -m trainers.paired_mnist`: runs `tf_factorgan.cli.paired_mnist` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import paired_mnist

if __name__ == "__main__":
    paired_mnist.run()
