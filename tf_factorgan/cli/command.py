"""What every command-line program shares: flags made from settings, --help grouped
by what the flags set, errors in one line that names the flags, and the run.

A settings class declares each setting once (`config.setting`: default, help,
bounds or choices, group); `define_settings` makes one absl flag per declared field
from it, and `settings_from_flags` builds the class from the flags, whose own checks
(in one place, the class) end the program in one line naming the flag
(`run_or_exit`). Flags that are no setting (a command's own, e.g. --results_dir) are
listed in --help by `group`. Light on purpose: the export and serving commands use it
too, and nothing here imports TensorFlow.
"""

import importlib.util
import signal
import sys
import textwrap
from typing import Callable, Collection, Optional, TypeVar

from absl import app, flags

from tf_factorgan import config

FLAGS = flags.FLAGS
T = TypeVar("T")

# --help's groups, in the order flags were registered: group -> flag names.
_GROUPS: dict[str, list[str]] = {}
_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string, tuple: flags.DEFINE_list}
HELP_FLAGS = ("-h", "-help", "--help", "-?", "--helpshort")
HELP_WIDTH = 88


def group(name: str, *flag_names: str) -> None:
    """Lists the flags `flag_names` under `name` in --help."""
    _GROUPS.setdefault(name, []).extend(n for n in flag_names if n not in _GROUPS.get(name, []))


def _flag_fields(settings_class: type, names: Optional[Collection[str]]):
    """(field, Setting) of the fields of `settings_class` that are flags (of `names`)."""
    return [(field, declared) for field, declared in config.settings(settings_class)
            if declared.flag and (names is None or field.name in names)]


def define_settings(settings_class: type, names: Optional[Collection[str]] = None,
                    flag_values: flags.FlagValues = FLAGS) -> None:
    """One flag per declared field of `settings_class` (`config.settings`; not those
    declared flag=False; only `names` when given): the field's name, type, default and
    help, listed in --help under its group. The flags take any value of their type;
    the class checks bounds and choices when `settings_from_flags` builds it."""
    for field, declared in _flag_fields(settings_class, names):
        kind = config.value_type(field)
        default = list(field.default) if kind is tuple else field.default
        _DEFINE[kind](field.name, default, config.named(declared.help, "--"),
                      flag_values=flag_values)
        group(declared.group, field.name)


def settings_from_flags(settings_class: type[T], names: Optional[Collection[str]] = None,
                        flag_values: flags.FlagValues = FLAGS) -> T:
    """`settings_class` with every field `define_settings` made a flag (of `names`) from
    that flag, the others at their defaults; a bad value ends the program in one line
    naming the flag."""
    values = {}
    for field, _ in _flag_fields(settings_class, names):
        value = flag_values[field.name].value
        values[field.name] = tuple(value) if config.value_type(field) is tuple else value
    return run_or_exit(lambda: settings_class(**values))


def list_flag(name: str, parse: Callable[[str], T]) -> tuple[T, ...]:
    """The items of list flag --name, each through `parse` (int, float, an enum)."""
    items = FLAGS[name].value
    try:
        return tuple(parse(item) for item in items)
    except ValueError:
        raise config.SettingError(
            f"{config.ref(name)} must be a comma-separated list of {parse.__name__} values, "
            f"got {','.join(items)!r}") from None


def require_extra(extra: str, *modules: str) -> None:
    """Ends the program in one line, before any work, when a module of the optional
    dependencies `extra` (pyproject.toml) is not installed."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        sys.exit(f"error: this command needs {', '.join(missing)}, of the optional dependencies "
                 f"'{extra}': pip install 'tf-factorgan[{extra}]'")


def run_or_exit(run: Callable[[], T]) -> T:
    """`run()` (building settings from flags, or an experiment); expected failures (bad
    flag values, missing data, bad files, unusable checkpoints) end the program with
    their one-line message, settings named as flags, instead of a traceback (or absl's
    whole usage text)."""
    try:
        return run()
    except (OSError, ValueError, RuntimeError) as error:
        exit_with(error)


def exit_with(error: BaseException) -> None:
    """Ends the program with `error` in one line (exit code 1), settings named as flags."""
    sys.exit(f"error: {config.flag_message(error)}")


def _shown(value) -> str:
    if value is None or value == "" or value == []:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _constraint(flag) -> str:
    """"one of: a, b" or ">= 1" for a flag absl checks itself (enums, bounds)."""
    choices = getattr(flag.parser, "enum_values", None)
    if choices:
        return f"one of: {', '.join(choices)}"
    return config.described(config.bounds_phrase(getattr(flag.parser, "lower_bound", None),
                                                 getattr(flag.parser, "upper_bound", None)))


def _flag_help(flag, constraint: str) -> str:
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    facts = "; ".join(filter(None, [f"default: {_shown(flag.default)}", constraint]))
    body = textwrap.fill(flag.help or "", HELP_WIDTH, initial_indent=" " * 6,
                         subsequent_indent=" " * 6)
    return f"  {name} ({facts})\n{body}"


def help_text(doc: str, settings_class: Optional[type] = None) -> str:
    """--help: `doc` (the command's docstring), then its flags by group (the settings'
    groups in `config.GROUPS` order, then the command's own), each with its default,
    constraint and help, then the flags every command takes."""
    declared = ({field.name: decl for field, decl in config.settings(settings_class)}
                if settings_class else {})
    order = [g for g in config.GROUPS if g in _GROUPS] + [g for g in _GROUPS if g not in config.GROUPS]
    sections = [doc.strip()]
    for name in order:
        lines = []
        for flag_name in _GROUPS[name]:
            if flag_name in FLAGS:
                constraint = (declared[flag_name].describe() if flag_name in declared
                              else _constraint(FLAGS[flag_name]))
                lines.append(_flag_help(FLAGS[flag_name], constraint))
        if lines:
            sections.append(f"{name}:\n" + "\n".join(lines))
    sections.append("every command:\n  --flagfile=FILE\n      Flags from FILE, one a line (# starts "
                    "a comment).\n  --helpfull\n      Also absl's own flags (logging, debugging).")
    return "\n\n".join(sections) + "\n"


def _absl_help() -> str:
    """absl's own flags (logging, flag files, debugging), as absl lists them; not those
    other libraries define on import (TensorFlow's TPU flags)."""
    modules = FLAGS.flags_by_module_dict()
    return "\n".join(FLAGS.module_help(module) for module in sorted(modules)
                     if module.startswith("absl."))


def run_main(main: Callable[[list], None], doc: str, settings_class: Optional[type] = None,
             interrupted: str = "interrupted") -> None:
    """`app.run(main)` with --help grouped (`help_text`: `doc` and the command's flags;
    --helpfull adds absl's own), TensorFlow's INFO logs off (unless --verbosity), and
    Ctrl-C that `main` does not handle ending in the one line `interrupted` instead of
    a traceback. Stderr held while the program imported (`tf_factorgan.cli`) is given
    back first, without TensorFlow's native log lines."""
    from tf_factorgan.logs import release_native_stderr

    release_native_stderr()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    arguments = sys.argv[1:]
    if any(a in HELP_FLAGS for a in arguments) or "--helpfull" in arguments:
        text = help_text(doc, settings_class)
        if "--helpfull" in arguments:
            text += f"\nabsl:\n{_absl_help()}\n"
        sys.stdout.write(text)
        sys.exit(0)

    def quiet_main(argv):
        from tf_factorgan.logs import quiet_info_logs

        quiet_info_logs()
        return main(argv)

    try:
        app.run(quiet_main)
    except KeyboardInterrupt:
        sys.exit(f"\n{interrupted}")

