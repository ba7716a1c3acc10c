import csv
import json

import pytest
import tensorflow as tf

from tf_factorgan.experiments import common, paired_mnist, paper_grid


def test_toy_grid_writes_csv_and_plot_and_resumes(tmp_path, digits, monkeypatch, capsys):
    base = paired_mnist.PairedMnistConfig(
        batch_size=10, steps=2, steps_per_call=2, log_every=0, image_every=0, checkpoint_every=0,
        out_path=str(tmp_path), eval_samples=60, min_classifier_accuracy=0.0)
    results = tmp_path / "results"
    grid = paper_grid.PaperGridConfig(base=base, num_joint_samples=(20, 40), same_digit_probs=(0.9,),
                                      results_dir=str(results))
    rows = paper_grid.run_grid(grid, *digits, tf.distribute.get_strategy())
    assert len(rows) == 3 * 2
    with open(tmp_path / "paired_mnist" / "grid" / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert {(r["variant"], r["num_joint_samples"], r["same_digit_prob"]) for r in table} == {
        (v.value, str(n), str(lam)) for v in paper_grid.GRID_VARIANTS for n in (20, 40) for lam in (0.9,)}
    assert all(float(r["fid_upper"]) >= 0 and float(r["dependency_distance"]) >= 0 for r in table)
    assert (tmp_path / "paired_mnist" / "grid" / "results.png").read_bytes()[:4] == b"\x89PNG"
    # The repository copy: the same table and plot, and every run's metrics.
    assert (results / "results.csv").read_text() == (tmp_path / "paired_mnist" / "grid" / "results.csv").read_text()
    assert (results / "results.png").exists()
    assert sorted(p.name for p in (results / "runs").iterdir()) == sorted(
        f"{v.value}_n{n}_lambda0.9.json" for v in paper_grid.GRID_VARIANTS for n in (20, 40))

    # Finished runs are read back, not trained again.
    monkeypatch.setattr(common, "run_experiment", lambda *a: pytest.fail("re-ran a finished run"))
    assert paper_grid.run_grid(grid, *digits, tf.distribute.get_strategy()) == rows

    # A finished run without the paper classifiers' FIDs (an older version's) is
    # evaluated again from its checkpoint, not trained again.
    metrics_path = tmp_path / "paired_mnist" / "grid" / "gan_n20_lambda0.9" / "metrics.json"
    old = json.loads(metrics_path.read_text())
    metrics_path.write_text(json.dumps({k: v for k, v in old.items() if not k.startswith("paper_")}))
    monkeypatch.undo()
    capsys.readouterr()
    calls = []
    run_experiment = common.run_experiment
    monkeypatch.setattr(common, "run_experiment",
                        lambda task, config, *a: calls.append(config) or run_experiment(task, config, *a))
    again = paper_grid.run_grid(grid, *digits, tf.distribute.get_strategy())
    assert [(c.experiment_name, c.eval_only) for c in calls] == [("grid/gan_n20_lambda0.9", True)]
    assert again == rows
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith("== ")]
    assert headers == ["== grid/gan_n20_lambda0.9: evaluating again for the metrics it lacks"]
