import csv
import json

import pytest
import tensorflow as tf

from tf_factorgan.experiments import common, paired_mnist, paired_mnist_ablation


def _base(tmp_path, steps):
    return paired_mnist.PairedMnistConfig(
        batch_size=10, steps=steps, steps_per_call=2, log_every=0, image_every=0,
        checkpoint_every=0, out_path=str(tmp_path / "runs"), eval_samples=60,
        min_classifier_accuracy=0.0)


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_ablation_tables_each_setting_and_continues_to_more_steps(tmp_path, digits, monkeypatch):
    results = tmp_path / "results"
    settings = ("original_choices", "keras_choices", "gan_redraw_pairing")
    config = paired_mnist_ablation.AblationConfig(_base(tmp_path, 2), settings, (1337,), str(results))
    strategy = tf.distribute.get_strategy()
    rows = paired_mnist_ablation.run_ablation(config, *digits, strategy)
    table = _read(results / "ablation_2.csv")
    assert [r["setting"] for r in table] == list(settings)
    assert table == _read(tmp_path / "runs" / "paired_mnist" / "ablation" / "ablation_2.csv")
    by_name = {r["setting"]: r for r in table}
    assert by_name["original_choices"]["spectral_norm"] == "reparametrize"
    assert (by_name["keras_choices"]["spectral_norm"], by_name["keras_choices"]["init"],
            by_name["keras_choices"]["fake_batches"]) == ("project", "glorot", "shared")
    assert by_name["gan_redraw_pairing"]["variant"] == "gan"
    assert by_name["gan_redraw_pairing"]["pairing"] == "redraw_each_epoch"
    for row in rows:
        assert row["fid_mean"] == pytest.approx((row["fid_upper"] + row["fid_lower"]) / 2)
    kept = json.loads((results / "runs" / "original_choices_seed1337_2.json").read_text())
    assert kept["step"] == 2 and kept["fid_upper"] == rows[0]["fid_upper"]

    # The same length is read back; more steps continue each run from its checkpoint.
    monkeypatch.setattr(common, "run_experiment", lambda *a: pytest.fail("re-ran a finished run"))
    assert paired_mnist_ablation.run_ablation(config, *digits, strategy) == rows
    monkeypatch.undo()
    longer = paired_mnist_ablation.AblationConfig(_base(tmp_path, 4), settings[:1], (1337,), str(results))
    (row,) = paired_mnist_ablation.run_ablation(longer, *digits, strategy)
    assert row["step"] == 4 and (results / "ablation_4.csv").exists()
    assert (results / "ablation_2.csv").exists()  # the shorter table stays


def test_summary_averages_each_setting_over_its_seeds():
    rows = [dict(setting="a", fid_mean=10.0, paper_fid_mean=6.0, dependency_distance=1.0),
            dict(setting="b", fid_mean=5.0, paper_fid_mean=None, dependency_distance=0.5),
            dict(setting="a", fid_mean=14.0, paper_fid_mean=7.0, dependency_distance=0.8)]
    summary = paired_mnist_ablation.summarise(rows)
    assert [s["setting"] for s in summary] == ["a", "b"]
    assert summary[0]["seeds"] == 2
    assert summary[0]["fid_mean"] == pytest.approx(12.0)
    assert summary[0]["fid_mean_std"] == pytest.approx(2.0)
    assert summary[0]["dependency_distance"] == pytest.approx(0.9)
    assert summary[1]["fid_mean_std"] == 0.0
    # A setting scored without the paper's classifiers leaves their columns blank.
    assert summary[0]["paper_fid_mean"] == pytest.approx(6.5) and "paper_fid_mean" not in summary[1]


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="unknown; choose from"):
        paired_mnist_ablation.AblationConfig(paired_mnist.PairedMnistConfig(), ("warp_drive",))
    with pytest.raises(ValueError, match="seeds"):
        paired_mnist_ablation.AblationConfig(paired_mnist.PairedMnistConfig(), ("original_choices",), ())
