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


def plot(path: str, rows: list[dict]) -> None:
    """FID (mean of upper and lower digit) and dependency distance against the
    number of paired samples, one column per lambda, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("FID (mean of digits)", lambda r: np.mean([r["fid_upper"], r["fid_lower"]]))]
    if all(r.get("paper_fid_upper") is not None for r in rows):
        panels.append(("FID, paper's classifiers",
                       lambda r: np.mean([r["paper_fid_upper"], r["paper_fid_lower"]])))
    panels.append(("dependency distance", lambda r: r["dependency_distance"]))
    lambdas = sorted({r["same_digit_prob"] for r in rows})
    fig, axes = plt.subplots(len(panels), len(lambdas), figsize=(4 * len(lambdas), 3 * len(panels)),
                             squeeze=False)
    for col, lam in enumerate(lambdas):
        for variant in sorted({r["variant"] for r in rows}):
            runs = sorted((r for r in rows if r["variant"] == variant and r["same_digit_prob"] == lam),
                          key=lambda r: r["num_joint_samples"])
            n = [r["num_joint_samples"] for r in runs]
            for row, (_, value) in enumerate(panels):
                axes[row, col].plot(n, [value(r) for r in runs], "o-", label=variant)
        axes[0, col].set_title(f"lambda = {lam:g}")
        for row, (label, _) in enumerate(panels):
            axes[row, col].set_xscale("log")
            axes[row, col].set_xlabel("paired samples")
            axes[row, col].set_ylabel(label)
    axes[0, 0].legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    files.write_bytes(path, buffer.getvalue())
