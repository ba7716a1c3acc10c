"""Redraws the Paired MNIST grid plots from their CSVs, without training.

Every `results/paired_mnist/**/results.csv` gets its `results.png` again (the plot
`trainers.paper_grid` writes), and the 200 000-update grids with the file-order subset
(100 and 1000 paired samples) are drawn together, on the paper's FID scale, as
`results/paired_mnist/fid_vs_paired_samples.png`, the README's results figure:

    .venv/bin/python tools/plot_paired_mnist.py
"""

import csv
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tf_factorgan.experiments import paper_grid  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results",
                    "paired_mnist")
HEADLINE_GRIDS = ("grid_200k_100pairs", "grid_200k_1000pairs")


def read(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "results.csv"), recursive=True)):
        paper_grid.plot(os.path.join(os.path.dirname(path), "results.png"), read(path))
        print("wrote", os.path.relpath(os.path.join(os.path.dirname(path), "results.png")))
    rows = [row for grid in HEADLINE_GRIDS for row in read(os.path.join(ROOT, grid, "results.csv"))]
    headline = os.path.join(ROOT, "fid_vs_paired_samples.png")
    paper_grid.plot(headline, rows, panels=("paper_fid", "dependency_distance"))
    print("wrote", os.path.relpath(headline))


if __name__ == "__main__":
    main()
