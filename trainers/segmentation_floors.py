"""`python -m trainers.segmentation_floors`: runs `tf_factorgan.cli.segmentation_floors` (its docstring and
--help say what it does)."""

from tf_factorgan.cli import segmentation_floors

if __name__ == "__main__":
    segmentation_floors.run()
