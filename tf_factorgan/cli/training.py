"""What the trainers share: the flags of their settings, with the variant and
precision flags of earlier versions refused in one line that names --variant or
--precision (`define`, `settings_from_flags`), and the run with its closing report
(`run_and_report`)."""

import os
import sys
from typing import Callable, TypeVar

from absl import flags

from tf_factorgan.cli import command
from tf_factorgan.experiments import common
from tf_factorgan.models import specs

FLAGS = flags.FLAGS
Settings = TypeVar("Settings", bound=common.TrainingSettings)
INTERRUPTED = ("interrupted; the run folder keeps its last complete checkpoint and outputs. "
               "Run the same command again to resume.")


def define(settings_class: type) -> None:
    """The flags of `settings_class` (`command.define_settings`), and the variant flags
    of earlier versions (`common.LEGACY_VARIANT_SETTINGS`), kept only to refuse them:
    a flagfile or command of an earlier version fails naming the --variant it means
    (`settings_from_flags`) instead of "unknown flag". --help does not list them."""
    command.define_settings(settings_class)
    for name in common.LEGACY_VARIANT_SETTINGS:
        define_old = flags.DEFINE_string if name == "model" else flags.DEFINE_bool
        define_old(name, None, "Replaced by --variant.")
    flags.DEFINE_bool("mixed_precision", None, "Replaced by --precision.")


def _spelled(name: str, value) -> str:
    """An old flag as it was given: --name=value, --name or --noname."""
    if isinstance(value, bool):
        return f"--{'' if value else 'no'}{name}"
    return f"--{name}={value}"


def refuse_legacy_variant() -> None:
    """Ends the program in one line when an old variant flag was given, naming the
    --variant that the old flags meant."""
    given = {name: FLAGS[name].value for name in common.LEGACY_VARIANT_SETTINGS
             if FLAGS[name].present}
    if given:
        old = " ".join(_spelled(name, value) for name, value in given.items())
        sys.exit(f"error: {old}: the variant is one flag now; use "
                 f"--variant={common.legacy_variant(given)}")


def refuse_legacy_precision() -> None:
    """Ends the program in one line when --mixed_precision (of earlier versions) was
    given, naming the --precision it meant."""
    if FLAGS["mixed_precision"].present:
        old = _spelled("mixed_precision", FLAGS.mixed_precision)
        sys.exit(f"error: {old}: the precision is one flag now; use "
                 f"--precision={common.legacy_precision(FLAGS.mixed_precision)} "
                 f"(or auto, the default: bfloat16 where the hardware has it)")


def settings_from_flags(settings_class: type[Settings]) -> Settings:
    """`command.settings_from_flags`, after refusing old variant and precision flags."""
    refuse_legacy_variant()
    refuse_legacy_precision()
    return command.settings_from_flags(settings_class)


def run_and_report(task: common.Task, settings: common.TrainingSettings,
                   headline: Callable[[dict], str], outputs: tuple[str, ...]) -> None:
    """Runs the experiment `task` with `settings` and prints its headline metrics and
    where its outputs are (nothing after Ctrl-C: the loop already said where the
    checkpoint is)."""
    metrics = command.run_or_exit(lambda: common.run_experiment(task, settings))
    if "interrupted_at_step" in metrics:
        return
    run_dir = settings.run_dir
    lines = [f"\n{headline(metrics)}", f"  {'metrics:':<13}{run_dir}/metrics.json"]
    lines += [f"  {name.split('.')[0] + ':':<13}{run_dir}/{name}" for name in outputs]
    lines.append(f"  {'spec:':<13}{run_dir}/{specs.SPEC_FILE}")
    # The experiment's folder: its runs side by side, each named after its folder.
    lines.append(f"  {'TensorBoard:':<13}tensorboard --logdir {os.path.dirname(run_dir)}")
    print("\n".join(lines))


def experiment_command(settings_class: type, task: common.Task, headline: Callable[[dict], str],
                       outputs: tuple[str, ...], doc: str) -> Callable[[], None]:
    """The `run()` of a trainer that builds `settings_class` from its flags and runs
    and reports `task` (`run_and_report`); the flags are defined now, when the
    trainer's module is imported."""
    define(settings_class)

    def main(argv):
        del argv
        run_and_report(task, settings_from_flags(settings_class), headline, outputs)

    return lambda: run(main, doc, settings_class)


def run(main: Callable[[list], None], doc: str, settings_class: type) -> None:
    """`command.run_main` for a trainer: its help lists `settings_class`' flags, and
    Ctrl-C outside the training loop (start-up, evaluation, a second Ctrl-C) says that
    the run folder is whole (outputs and checkpoints are only ever replaced whole)."""
    command.run_main(main, doc, settings_class, INTERRUPTED)
