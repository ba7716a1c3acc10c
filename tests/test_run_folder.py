"""A run folder has one owner at a time (issue 23, item 7) and keeps the settings
that define its run, refusing a resume that would silently mix others in (item 8)."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests import kill_program
from tests.conftest import REPO_ROOT
from tf_factorgan import checkpoints, run_folder
from tf_factorgan.experiments import common, paired_mnist


@pytest.fixture(scope="module")
def classifier_cache(tmp_path_factory):
    """One cache of the evaluation classifiers for the module's runs (not a run setting)."""
    return str(tmp_path_factory.mktemp("classifiers"))


# -- item 7: one run at a time ----------------------------------------------------------


def test_a_second_run_beside_a_live_one_refuses_naming_the_folder_and_the_holder(tmp_path):
    run_dir = tmp_path / "paired_mnist" / "shared"
    with open(tmp_path / "first.log", "w+") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_program", str(tmp_path), "shared", "1000000"],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not checkpoints.steps_on_disk(str(run_dir / "checkpoints")):
                assert first.poll() is None, "the first run ended early"
                assert time.monotonic() < deadline, "the first run wrote no checkpoint"
                time.sleep(0.05)
            # Another seed, as in the issue: it must not train into the same folder.
            second = kill_program.config(str(tmp_path), "shared", 4, seed=7)
            with pytest.raises(run_folder.FolderInUse) as refused:
                kill_program.run(second)
            message = refused.value.as_flags()  # as the command line says it
            assert re.fullmatch(
                rf"{re.escape(str(run_dir))} is in use by another run \(pid {first.pid} on host "
                r"\S+ since \S+\); wait for it to end, or give this one another "
                r"--experiment_name or --out_path", message)
            assert str(refused.value).endswith("another experiment_name or out_path")  # Python's
            assert first.poll() is None  # the first run goes on
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
    # The killed run's lock file is still there and names it, yet blocks nothing.
    assert f'"pid": {first.pid}' in (run_dir / run_folder.LOCK_FILE).read_text()
    with run_folder.locked(str(run_dir)):
        assert f'"pid": {os.getpid()}' in (run_dir / run_folder.LOCK_FILE).read_text()
    assert not (run_dir / run_folder.LOCK_FILE).exists()


def test_the_lock_is_exclusive_and_a_failed_start_leaves_no_folder(tmp_path):
    run_dir = str(tmp_path / "out" / "experiment" / "run")
    with run_folder.locked(run_dir):
        # flock is per open file: a second holder in this process conflicts as well.
        with pytest.raises(run_folder.FolderInUse, match=rf"pid {os.getpid()} on host"):
            with run_folder.locked(run_dir):
                pass
        assert os.listdir(run_dir) == [run_folder.LOCK_FILE]
    assert not os.path.exists(tmp_path / "out")  # nothing was written: nothing stays
    with run_folder.locked(run_dir):
        open(os.path.join(run_dir, "metrics.json"), "w").close()
    assert os.listdir(run_dir) == ["metrics.json"]


# -- item 8: the settings that define a run ---------------------------------------------


def _finished(tmp_path, classifier_cache, **overrides):
    config = kill_program.config(str(tmp_path), "run", 2,
                                 classifier_cache_dir=classifier_cache, **overrides)
    kill_program.run(config)
    return config


def _folder_state(run_dir):
    return {name: open(os.path.join(run_dir, name), "rb").read()
            for name in sorted(os.listdir(run_dir)) if os.path.isfile(os.path.join(run_dir, name))}


def test_a_resume_with_other_settings_is_refused_listing_each_difference(tmp_path,
                                                                        classifier_cache):
    config = _finished(tmp_path, classifier_cache)
    run_dir = config.run_dir
    recorded = json.loads(open(os.path.join(run_dir, run_folder.SETTINGS_FILE)).read())
    assert recorded["history"] == [] and recorded["settings"]["batch_size"] == 10
    assert "out_path" not in recorded["settings"] and "eval_only" not in recorded["settings"]
    before = _folder_state(run_dir)

    changed = dataclasses.replace(config, batch_size=20, num_joint_samples=50, steps=4)
    with pytest.raises(run_folder.SettingsChanged) as refused:
        kill_program.run(changed)
    assert str(refused.value) == (
        f"{run_dir} was trained with other settings (recorded in "
        f"{os.path.join(run_dir, run_folder.SETTINGS_FILE)}): batch_size: 10 -> 20, "
        "num_joint_samples: 40 -> 50, steps: 2 -> 4. batch_size, num_joint_samples define the "
        "run: give the recorded value or train a new run under another experiment_name; to "
        "change steps from here on, add allow_changed=steps")
    assert refused.value.as_flags().endswith(  # the command line names the flags
        "under another --experiment_name; to change steps from here on, add --allow_changed=steps")
    # A network of another shape is a difference of settings, not "no checkpoint restores".
    with pytest.raises(run_folder.SettingsChanged, match=r"nz: 50 -> 3\. nz defines the run"):
        kill_program.run(dataclasses.replace(config, nz=3))
    with pytest.raises(run_folder.SettingsChanged,
                       match=r'variant: "factorgan" -> "gan"\. variant defines the run'):
        kill_program.run(dataclasses.replace(config, variant="gan"))
    # --allow_changed lets only the settings it names through.
    with pytest.raises(run_folder.SettingsChanged, match=r": batch_size: 10 -> 20\. batch_size"):
        kill_program.run(dataclasses.replace(changed, num_joint_samples=40, allow_changed=("steps",)))
    assert _folder_state(run_dir) == before


def test_allowed_changes_are_recorded_at_the_step_the_run_resumed_from(tmp_path, classifier_cache,
                                                                      capsys):
    config = _finished(tmp_path, classifier_cache)
    longer = dataclasses.replace(config, steps=4, allow_changed=("steps",))
    metrics = kill_program.run(longer)
    assert metrics["step"] == 4
    change = {"step": 2, "changed": {"steps": {"old": 2, "new": 4}}}
    recorded = json.loads(open(os.path.join(config.run_dir, run_folder.SETTINGS_FILE)).read())
    assert recorded["history"] == [change] and recorded["settings"]["steps"] == 4
    written = json.loads(open(os.path.join(config.run_dir, "metrics.json")).read())
    assert written["settings_history"] == [change] and written["config"]["steps"] == 4
    assert "Settings changed at step 2: steps: 2 -> 4 (recorded in " in capsys.readouterr().out
    # The new settings are the run's now: the same command resumes without the flag, and
    # --eval_only works against the folder.
    assert kill_program.run(dataclasses.replace(longer, allow_changed=(), eval_only=True))["step"] == 4
    recorded = json.loads(open(os.path.join(config.run_dir, run_folder.SETTINGS_FILE)).read())
    assert recorded["history"] == [change]


def test_a_run_without_a_settings_record_is_compared_with_its_metrics_config(tmp_path):
    """Run folders written before run_settings.json: their metrics.json's config."""
    config = kill_program.config(str(tmp_path), "old", 2)
    os.makedirs(os.path.join(config.run_dir, "checkpoints"))
    open(os.path.join(config.run_dir, "checkpoints", "ckpt-2.index"), "w").close()
    with open(os.path.join(config.run_dir, "metrics.json"), "w") as f:
        json.dump({"step": 2, "config": {**dataclasses.asdict(config), "batch_size": 50,
                                         "out_path": "elsewhere"}}, f)
    with pytest.raises(run_folder.SettingsChanged,
                       match=r"\(recorded in .*metrics\.json\): batch_size: 50 -> 10\. "):
        common.check_run_settings(config)
    check = common.check_run_settings(dataclasses.replace(config, batch_size=50))
    assert not check.unrecorded and not check.changed
    os.remove(os.path.join(config.run_dir, "metrics.json"))
    assert common.check_run_settings(config).unrecorded
    # Without checkpoints nothing was trained: a new run starts with its own settings.
    os.remove(os.path.join(config.run_dir, "checkpoints", "ckpt-2.index"))
    check = common.check_run_settings(dataclasses.replace(config, nz=3))
    assert not check.unrecorded and not check.changed


@pytest.mark.parametrize("old, variant", [
    ({"factorgan": True, "use_real_dep_disc": True}, "factorgan"),  # paired_mnist
    ({"factorgan": True, "use_real_dep_disc": False}, "factorgan_no_cp"),
    ({"factorgan": False, "use_real_dep_disc": False}, "gan"),
    ({"factorgan": False}, "gan"),  # image_pairs, audio_separation
    ({"factorgan": True}, "factorgan"),
    ({"model": "cyclegan"}, "cyclegan"),  # image2image
    ({"batch_size": 3}, None),
])
def test_the_variant_settings_of_earlier_versions_name_a_variant(old, variant):
    assert common.legacy_variant(old) == variant
    upgraded = common.upgraded_settings({**old, "nz": 3})
    assert upgraded == ({**old, "nz": 3} if variant is None else {"nz": 3, "variant": variant})


def test_a_run_recorded_with_the_old_variant_settings_resumes_under_variant(tmp_path):
    """Run folders of versions before --variant recorded factorgan and use_real_dep_disc
    (or model, factorgan): a resume compares the variant they meant, and records it."""
    config = kill_program.config(str(tmp_path), "old_variant", 2)
    os.makedirs(os.path.join(config.run_dir, "checkpoints"))
    open(os.path.join(config.run_dir, "checkpoints", "ckpt-2.index"), "w").close()
    path = os.path.join(config.run_dir, run_folder.SETTINGS_FILE)
    settings = {name: value for name, value in common.run_settings(config).items() if name != "variant"}
    for factorgan, use_real_dep_disc, meant in ((True, False, "factorgan_no_cp"), (True, True, "factorgan")):
        with open(path, "w") as f:
            json.dump({"settings": {**settings, "factorgan": factorgan,
                                    "use_real_dep_disc": use_real_dep_disc}, "history": []}, f)
        if meant != config.variant:
            with pytest.raises(run_folder.SettingsChanged,
                               match=rf'variant: "{meant}" -> "{config.variant}"\. variant defines'):
                common.check_run_settings(config)
    check = common.check_run_settings(config)
    assert not check.unrecorded and not check.changed
    common.record_run_settings(check, 2)
    recorded = json.loads(open(path).read())["settings"]
    assert recorded["variant"] == "factorgan" and not {"factorgan", "use_real_dep_disc"} & set(recorded)


def test_a_damaged_settings_record_is_named(tmp_path):
    config = kill_program.config(str(tmp_path), "bad", 2)
    os.makedirs(os.path.join(config.run_dir, "checkpoints"))
    open(os.path.join(config.run_dir, "checkpoints", "ckpt-2.index"), "w").close()
    path = os.path.join(config.run_dir, run_folder.SETTINGS_FILE)
    for content, message in (('{"settings": ', "is not valid JSON"),
                             ('{"settings": [1]}', 'must hold {"settings"')):
        with open(path, "w") as f:
            f.write(content)
        with pytest.raises(ValueError, match=re.escape(path) + ".* " + re.escape(message)):
            common.check_run_settings(config)


def test_allow_changed_names_only_settings_that_may_change():
    config = paired_mnist.PairedMnistConfig(allow_changed=["steps", "lr"])  # as the list flag
    assert config.allow_changed == ("steps", "lr")
    with pytest.raises(ValueError, match=r"^allow_changed=batch_size,stpes: stpes: no such "
                                         r"setting; batch_size: defines the run; it may name "
                                         r"checkpoint_every, eval_every, "):
        paired_mnist.PairedMnistConfig(allow_changed=("batch_size", "stpes"))


def test_the_settings_lists_name_fields_of_the_experiments():
    from tf_factorgan.experiments import arrays, audio_separation, image2image, image_pairs

    configs = (paired_mnist.PairedMnistConfig, arrays.ArraysConfig, image_pairs.ImagePairsConfig,
               image2image.Image2ImageConfig, audio_separation.AudioSeparationConfig)
    fields = {f.name for config in configs for f in dataclasses.fields(config)}
    listed = common.TrainingSettings.NOT_RUN_SETTINGS + common.TrainingSettings.CHANGEABLE
    assert set(listed) <= fields and len(set(listed)) == len(listed)
