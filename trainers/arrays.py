"""`python -m trainers.arrays`: runs `tf_factorgan.cli.arrays` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import arrays

if __name__ == "__main__":
    arrays.run()
