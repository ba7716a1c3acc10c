"""The Paired MNIST grid of the FactorGAN paper (Figure 1).

GAN, FactorGAN and FactorGAN-no-cp for every number of paired samples and every
lambda; one CSV row per run and a plot of FID and dependency distance against the
number of paired samples (one column of panels per lambda). Runs finished at the
configured length are read back from their metrics.json, so an interrupted grid resumes
where it stopped, and a grid re-run with more --steps continues every run from its last
checkpoint. With a results folder (e.g. `results/paired_mnist/...` in the repository)
the CSV, the plot and every run's metrics.json are copied there as well.
"""

import csv
import dataclasses
import io
import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.data import mnist
from tf_factorgan.experiments import common, paired_mnist
from tf_factorgan.factorisation import Variant

GRID_VARIANTS = tuple(Variant)
CSV_COLUMNS = ("variant", "num_joint_samples", "same_digit_prob", "fid_upper", "fid_lower",
               "paper_fid_upper", "paper_fid_lower", "dependency_distance", "step")


@dataclasses.dataclass(frozen=True)
class PaperGridConfig:
    """`base` holds every per-run setting; the grid overrides variant, number of
    paired samples, lambda and experiment name."""

    base: paired_mnist.PairedMnistConfig
    variants: tuple[Variant, ...] = GRID_VARIANTS
    num_joint_samples: tuple[int, ...] = (100, 200, 500, 1000)
    same_digit_probs: tuple[float, ...] = (0.1, 0.5, 0.9)
    results_dir: Optional[str] = None

    @property
    def grid_dir(self) -> str:
        return os.path.join(self.base.out_path, "paired_mnist", "grid")

    def run_configs(self) -> list[paired_mnist.PairedMnistConfig]:
        configs = []
        for lam in self.same_digit_probs:
            for n in self.num_joint_samples:
                for variant in self.variants:
                    configs.append(dataclasses.replace(
                        self.base,
                        variant=variant.value,
                        num_joint_samples=n,
                        same_digit_prob=lam,
                        experiment_name=os.path.join("grid", f"{variant.value}_n{n}_lambda{lam:g}"),
                        # A longer grid continues its runs (run_settings.json records it).
                        allow_changed=tuple(sorted({*self.base.allow_changed, "steps"})),
                    ))
                    configs[-1].gan_config()  # fail on bad settings before any run
        return configs


def run_or_read(run_config: paired_mnist.PairedMnistConfig, train: mnist.Digits,
                test: mnist.Digits, strategy: tf.distribute.Strategy) -> dict:
    """The metrics of one run: read back when its metrics.json is of the configured
    length and holds every headline metric; evaluated again from its checkpoint when
    it lacks some (a run of a version before them); else trained (resuming from its
    newest checkpoint) and evaluated."""
    metrics_path = os.path.join(run_config.run_dir, "metrics.json")
    header = run_config.experiment_name
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        if metrics.get("step") == run_config.steps:
            if set(paired_mnist.headline_metrics(run_config)) <= set(metrics):
                return metrics
            header += ": evaluating again for the metrics it lacks"
            run_config = dataclasses.replace(run_config, eval_only=True)
    print(f"\n== {header}")
    data = paired_mnist.build_data(run_config, train, test)
    metrics = common.run_experiment(paired_mnist.TASK, run_config, data, strategy)
    if "interrupted_at_step" in metrics:
        raise KeyboardInterrupt(f"interrupted in {run_config.experiment_name}")
    return metrics


def keep_results(results_dir: Optional[str], run_config: paired_mnist.PairedMnistConfig,
                 name: str) -> None:
    """Copies a finished run's metrics.json to <results_dir>/runs/<name>.json."""
    if results_dir:
        with open(os.path.join(run_config.run_dir, "metrics.json"), "rb") as f:
            files.write_bytes(os.path.join(results_dir, "runs", f"{name}.json"), f.read())


def run_grid(config: PaperGridConfig, train: mnist.Digits, test: mnist.Digits,
             strategy: tf.distribute.Strategy) -> list[dict]:
    """Runs (or reads back) every run of the grid; writes results.csv and results.png
    to the grid folder and, if set, to `config.results_dir`."""
    rows = []
    for run_config in config.run_configs():
        metrics = run_or_read(run_config, train, test, strategy)
        keep_results(config.results_dir, run_config, os.path.basename(run_config.experiment_name))
        rows.append({k: metrics.get(k) for k in CSV_COLUMNS})
    for folder in filter(None, (config.grid_dir, config.results_dir)):
        write_csv(os.path.join(folder, "results.csv"), rows)
        plot(os.path.join(folder, "results.png"), rows)
    return rows


def write_csv(path: str, rows: list[dict], columns=CSV_COLUMNS) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    files.write_bytes(path, buffer.getvalue().encode())


# The paper's Figure 1, as its repository's analysis/mnist/ CSVs give it (Stoller,
# Ewert & Dixon, ICLR 2020; one run per point, FID on one classifier of the original
# code's recipe): (variant, lambda) -> ((paired samples, FID, dependency distance), ...).
# FactorGAN-no-cp never trains on pairs: the paper plots one run across every count.
_PAPER_COUNTS = (10, 20, 50, 100, 1000, 5000, 10000, 20000, 60000)
PAPER_FIGURE_1 = {
    (variant, lam): tuple(zip(_PAPER_COUNTS, fids, deps))
    for (variant, lam), (fids, deps) in {
        ("gan", 0.1): ((154.45, 83.97, 37.24, 22.58, 4.137, 3.0715, 2.752, 2.953, 2.615),
                       (4.142, 2.296, 1.03, 0.746, 0.2392, 0.2024, 0.2072, 0.1986, 0.2293)),
        ("gan", 0.9): ((144.05, 62.66, 34.265, 18.52, 5.9085, 2.8295, 2.9965, 2.48, 2.129),
                       (0.6944, 0.3906, 0.4542, 0.3664, 0.6986, 0.6833, 0.6688, 0.723, 0.7067)),
        ("factorgan", 0.1): ((7.7045, 6.793, 3.2665, 4.341, 3.466, 2.5155, 2.747, 2.814, 2.861),
                             (0.4388, 0.381, 0.306, 0.3545, 0.2586, 0.2501, 0.2225, 0.2162,
                              0.2025)),
        ("factorgan", 0.9): ((10.815, 5.4855, 4.057, 4.4495, 3.0935, 1.382, 1.5345, 1.3675,
                              1.142),
                             (1.249, 1.174, 1.224, 1.208, 0.815, 0.513, 0.4168, 0.3421, 0.3271)),
        ("factorgan_no_cp", 0.1): ((2.827,) * 9, (0.267,) * 9),
        ("factorgan_no_cp", 0.9): ((2.598,) * 9, (1.488,) * 9),
    }.items()}
VARIANT_NAMES = {"gan": "GAN", "factorgan": "FactorGAN", "factorgan_no_cp": "FactorGAN-no-cp"}
_COLOURS = {"gan": "tab:red", "factorgan": "tab:blue", "factorgan_no_cp": "tab:green"}


def _mean_fid(prefix: str):
    def value(row: dict):
        upper, lower = row.get(f"{prefix}fid_upper"), row.get(f"{prefix}fid_lower")
        return None if upper in (None, "") or lower in (None, "") else (
            (float(upper) + float(lower)) / 2)
    return value


# Panels a plot may show: name -> (axis label, value of one of our rows, index of the
# paper's figure in a PAPER_FIGURE_1 point or None where the paper has no such figure).
PANELS = {
    "paper_fid": ("FID, paper's classifiers\n(mean of the two digits)", _mean_fid("paper_"), 1),
    "fid": ("FID, tuned classifier\n(mean of the two digits)", _mean_fid(""), None),
    "dependency_distance": ("dependency distance",
                            lambda row: float(row["dependency_distance"]), 2),
}


def plot(path: str, rows: list[dict], panels: Optional[tuple[str, ...]] = None) -> None:
    """Each panel's figure against the number of paired samples, one column of panels
    per lambda, one colour per variant: ours as large dots (joined where a variant has
    several counts), the paper's Figure 1 as thin dashed lines over all its counts
    where it reports that figure (FID on its classifier recipe, dependency distance).
    By default the panels with a value in every row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if panels is None:
        panels = tuple(name for name, (_, value, _) in PANELS.items()
                       if all(value(r) is not None for r in rows))
    lambdas = sorted({float(r["same_digit_prob"]) for r in rows})
    variants = [v for v in VARIANT_NAMES if any(r["variant"] == v for r in rows)]
    fig, axes = plt.subplots(len(panels), len(lambdas), figsize=(4.6 * len(lambdas),
                             2.9 * len(panels) + 0.6), squeeze=False)
    for col, lam in enumerate(lambdas):
        for row_index, name in enumerate(panels):
            label, value, paper_index = PANELS[name]
            axis = axes[row_index, col]
            for variant in variants:
                colour = _COLOURS[variant]
                paper = PAPER_FIGURE_1.get((variant, lam)) if paper_index else None
                if paper:
                    axis.plot([p[0] for p in paper], [p[paper_index] for p in paper], "--",
                              color=colour, linewidth=1, marker=".", markersize=4, alpha=0.7)
                ours = sorted((r for r in rows if r["variant"] == variant
                               and float(r["same_digit_prob"]) == lam),
                              key=lambda r: int(r["num_joint_samples"]))
                axis.plot([int(r["num_joint_samples"]) for r in ours], [value(r) for r in ours],
                          "o-", color=colour, markersize=8, linewidth=2)
            axis.set_xscale("log")
            axis.set_xlim(7, 9e4)
            if paper_index == 1:  # the paper's FIDs span 1 to 150
                axis.set_yscale("log")
            else:
                axis.set_ylim(bottom=0)
            axis.grid(True, which="major", alpha=0.3)
            axis.set_xlabel("paired samples")
            axis.set_ylabel(label)
        axes[0, col].set_title(f"lambda = {lam:g}")
    handles = [plt.Line2D([], [], color=_COLOURS[v], linewidth=6) for v in variants]
    handles += [plt.Line2D([], [], color="grey", marker="o", markersize=8, linewidth=2),
                plt.Line2D([], [], color="grey", linestyle="--", marker=".", linewidth=1)]
    labels = [VARIANT_NAMES[v] for v in variants] + [
        "ours", "the paper (Stoller et al. 2020, Fig. 1)"]
    columns = len(labels) if len(lambdas) > 1 else 3
    legend_rows = -(-len(labels) // columns)
    fig.legend(handles, labels, loc="upper center", ncol=columns, fontsize=8, frameon=False)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.1 + 0.22 * legend_rows) / height))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    files.write_bytes(path, buffer.getvalue())
