"""`python -m trainers.image2image`: runs `tf_factorgan.cli.image2image` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import image2image

if __name__ == "__main__":
    image2image.run()
