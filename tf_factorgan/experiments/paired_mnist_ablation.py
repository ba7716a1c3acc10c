"""Which training choices close the gap to the original code on Paired MNIST.

Each named setting fixes the four training choices (spectral norm, initialisation, fake
batches, Adam epsilon) and the pairing of a run (FactorGAN unless named gan, lambda 0.9,
100 paired samples): `original_choices` makes them as the original code does, the next
four change one each, `keras_choices` makes all four as Keras' defaults do (the
library's defaults, chosen by this ablation). One CSV row per setting
(FID of both digits, their mean, dependency distance); finished runs are read back, and
re-running with more --steps continues every run from its checkpoint, so one ablation
yields the table at several lengths (one CSV per length). GAN training on 100 pairs is
noisy from seed to seed (FID moves by a third between seeds at 30 000 updates), so each
setting runs with every seed of --seeds and `ablation_<steps>_summary.csv` gives the
mean and standard deviation over them.
"""

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_factorgan.config import SettingError
from tf_factorgan.data import mnist
from tf_factorgan.experiments import paired_mnist, paper_grid

# The four training choices as the original code makes them, and as Keras' defaults
# (and this library's) make them.
ORIGINAL = dict(spectral_norm="reparametrize", init="torch", fake_batches="per_discriminator",
                adam_epsilon=1e-8)
KERAS = dict(spectral_norm="project", init="glorot", fake_batches="shared", adam_epsilon=1e-7)
_GAN = dict(variant="gan")
_REDRAW = dict(pairing=mnist.REDRAW_EACH_EPOCH)
# name -> every setting it fixes (none is left to the config's defaults, so a name
# means the same run whatever the defaults are). FactorGAN unless it says gan.
SETTINGS = {
    "original_choices": ORIGINAL,
    "project_spectral_norm": {**ORIGINAL, "spectral_norm": "project"},
    "glorot_init": {**ORIGINAL, "init": "glorot"},
    "shared_fake_batch": {**ORIGINAL, "fake_batches": "shared"},
    "keras_adam_epsilon": {**ORIGINAL, "adam_epsilon": 1e-7},
    "keras_choices": KERAS,
    # Keras' parametrisation (projection, Glorot) with the original's other two choices.
    "keras_parametrisation": {**ORIGINAL, "spectral_norm": "project", "init": "glorot"},
    "redraw_pairing": {**ORIGINAL, **_REDRAW},
    "keras_parametrisation_redraw_pairing": {
        **ORIGINAL, "spectral_norm": "project", "init": "glorot", **_REDRAW},
    "factorgan_no_cp": {**ORIGINAL, "variant": "factorgan_no_cp"},
    "gan": {**ORIGINAL, **_GAN},
    "gan_redraw_pairing": {**ORIGINAL, **_GAN, **_REDRAW},
    "gan_keras_parametrisation": {**ORIGINAL, "spectral_norm": "project", "init": "glorot", **_GAN},
    "gan_keras_parametrisation_redraw_pairing": {
        **ORIGINAL, "spectral_norm": "project", "init": "glorot", **_GAN, **_REDRAW},
}
CSV_COLUMNS = ("setting", "seed", "variant", "spectral_norm", "init", "fake_batches", "adam_epsilon",
               "pairing", "fid_upper", "fid_lower", "fid_mean", "paper_fid_mean", "dependency_distance",
               "step")


@dataclasses.dataclass(frozen=True)
class AblationConfig:
    """`base`: the per-run settings every named setting starts from."""

    base: paired_mnist.PairedMnistConfig
    settings: tuple[str, ...] = tuple(SETTINGS)
    seeds: tuple[int, ...] = (1337,)
    results_dir: Optional[str] = None

    def __post_init__(self):
        unknown = [name for name in self.settings if name not in SETTINGS]
        if unknown:
            raise SettingError(f"{{settings}} {unknown} are unknown; choose from {list(SETTINGS)}")
        if not self.seeds:
            raise SettingError("{seeds} must name at least one seed")

    @property
    def ablation_dir(self) -> str:
        return os.path.join(self.base.out_path, "paired_mnist", "ablation")

    def run_configs(self) -> dict[tuple[str, int], paired_mnist.PairedMnistConfig]:
        """(setting, seed) -> config of every run (validated before the first run)."""
        configs = {}
        for seed in self.seeds:
            for name in self.settings:
                config = dataclasses.replace(
                    self.base, seed=seed, experiment_name=os.path.join("ablation", f"{name}_seed{seed}"),
                    # A longer ablation continues its runs (run_settings.json records it).
                    allow_changed=tuple(sorted({*self.base.allow_changed, "steps"})),
                    **SETTINGS[name],
                )
                config.gan_config()
                configs[name, seed] = config
        return configs


def run_ablation(config: AblationConfig, train: mnist.Digits, test: mnist.Digits,
                 strategy: tf.distribute.Strategy) -> list[dict]:
    """Runs (or reads back) every setting; writes ablation_<steps>.csv to the ablation
    folder and, if set, to `config.results_dir` with every run's metrics.json."""
    rows = []
    for (name, seed), run_config in config.run_configs().items():
        metrics = paper_grid.run_or_read(run_config, train, test, strategy)
        paper_grid.keep_results(config.results_dir, run_config, f"{name}_seed{seed}_{run_config.steps}")
        rows.append(table_row(name, seed, metrics))
    for folder in filter(None, (config.ablation_dir, config.results_dir)):
        write_tables(folder, config.base.steps, rows)
    return rows


def table_row(name: str, seed: int, metrics: dict) -> dict:
    """The CSV row of one run from its metrics.json."""
    settings = metrics["config"]
    return {
        "setting": name,
        "seed": seed,
        "fid_mean": (metrics["fid_upper"] + metrics["fid_lower"]) / 2,
        # None for runs scored without the paper's classifiers.
        "paper_fid_mean": ((metrics["paper_fid_upper"] + metrics["paper_fid_lower"]) / 2
                           if "paper_fid_upper" in metrics else None),
        **{k: settings[k] for k in ("spectral_norm", "init", "fake_batches", "adam_epsilon",
                                    "pairing")},
        **{k: metrics[k] for k in ("variant", "fid_upper", "fid_lower",
                                   "dependency_distance", "step")},
    }


def write_tables(folder: str, steps: int, rows: list[dict]) -> None:
    """ablation_<steps>.csv (one row per run) and ablation_<steps>_summary.csv."""
    paper_grid.write_csv(os.path.join(folder, f"ablation_{steps}.csv"), rows, CSV_COLUMNS)
    paper_grid.write_csv(os.path.join(folder, f"ablation_{steps}_summary.csv"),
                         summarise(rows), SUMMARY_COLUMNS)


SUMMARY_COLUMNS = ("setting", "seeds", "fid_mean", "fid_mean_std", "paper_fid_mean",
                   "paper_fid_mean_std", "dependency_distance", "dependency_distance_std")


def summarise(rows: list[dict]) -> list[dict]:
    """One row per setting (in order of appearance): mean and population standard
    deviation over its seeds of the mean FID (tuned and, where every run has it, the
    paper's classifiers) and of the dependency distance."""
    summary = []
    for name in dict.fromkeys(r["setting"] for r in rows):
        runs = [r for r in rows if r["setting"] == name]
        entry = {"setting": name, "seeds": len(runs)}
        for key in ("fid_mean", "paper_fid_mean", "dependency_distance"):
            if any(r[key] is None for r in runs):
                continue  # left blank: some run lacks it
            values = np.array([r[key] for r in runs], np.float64)
            entry[key], entry[f"{key}_std"] = float(values.mean()), float(values.std())
        summary.append(entry)
    return summary
