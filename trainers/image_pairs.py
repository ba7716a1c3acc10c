"""`python -m trainers.image_pairs`: runs `tf_factorgan.cli.image_pairs` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import image_pairs

if __name__ == "__main__":
    image_pairs.run()
