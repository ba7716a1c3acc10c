"""Settings declared once: a dataclass field with its default, help text, bounds or
choices and the group it is listed in (`setting`), checked in one place (`check`) by
errors that name the setting (`SettingError`: "batch_size must be >= 1, got 0").

The command line (`tf_factorgan.cli.command`) makes one flag per declared field and
shows the same errors with the flag's name ("--batch_size must be >= 1, got 0"): an
error's template writes each setting it names as `{name}` (`ref`), and `named` spells
it for Python or for the command line.

A subclass that redeclares a field only to change its default (`steps: int = 40000`)
keeps the declaration of the field it overrides (`declaration` looks along the MRO);
one that redeclares it with `setting(...)` replaces it (other choices, say).
"""

import dataclasses
import enum
import re
import typing
from typing import Any, Iterator, Optional

# The groups of a command's --help, in their order.
DATA, MODEL, TRAINING, EVALUATION, OUTPUT = GROUPS = (
    "data", "model", "training", "evaluation", "output")

_METADATA_KEY = "tf_factorgan.setting"
# `{name}` in an error template: a lower-case identifier in braces.
_REFERENCE = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def ref(name: str) -> str:
    """`name` as an error template writes it: `{name}`."""
    return "{" + name + "}"


def named(template: str, prefix: str = "") -> str:
    """`template` with every `{name}` written as prefix + name ("" in Python, "--" on
    the command line)."""
    return _REFERENCE.sub(lambda match: prefix + match.group(1), template)


class NamesSettings:
    """Mixin of the errors whose message names settings. Raised with a template that
    writes them `{name}`: `str(error)` names them bare, as Python code sets them;
    `as_flags()` as flags."""

    def __init__(self, template: str):
        super().__init__(named(template))
        self.template = template

    def as_flags(self) -> str:
        return named(self.template, "--")


class SettingError(NamesSettings, ValueError):
    """Settings out of bounds, or that do not go together."""


class SettingPathError(NamesSettings, FileNotFoundError):
    """A setting names a file or folder that is not there."""


def flag_message(error: BaseException) -> str:
    """`error`'s message as the command line shows it: settings named as flags."""
    return error.as_flags() if isinstance(error, NamesSettings) else str(error)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bounds_phrase(low=None, high=None, above=None, below=None) -> str:
    """Bounds as an error says them: "must be >= 1", "must lie in [0, 1)", or "" (none);
    low / high inclusive, above / below exclusive."""
    lower = (("[", ">=", low) if low is not None else
             ("(", ">", above) if above is not None else None)
    upper = (("]", "<=", high) if high is not None else
             (")", "<", below) if below is not None else None)
    if lower and upper:
        return f"must lie in {lower[0]}{_number(lower[2])}, {_number(upper[2])}{upper[0]}"
    if lower or upper:
        _, relation, bound = lower or upper
        return f"must be {relation} {_number(bound)}"
    return ""


def described(bounds: str) -> str:
    """A `bounds_phrase` as --help lists it: ">= 1", "in [0, 1)"."""
    return bounds.replace("must be ", "").replace("must lie in", "in")


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a field declares besides its type and default.

    help: one or two sentences for --help. group: one of GROUPS. choices: the values
    allowed (empty: any). low / high: inclusive bounds; above / below: exclusive ones
    (NaN fails every bound). note: said after a bound's error, e.g. "0 = never".
    The help may name other settings as `{name}` (shown as flags by --help).
    flag: False keeps the field off the command line (tests and programs set it).
    """

    help: str
    group: str
    choices: tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    above: Optional[float] = None
    below: Optional[float] = None
    note: str = ""
    flag: bool = True

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {self.group!r}")

    def bounds(self) -> str:
        """The bounds as a phrase ("must be >= 1", "must lie in [0, 1)"), or ""."""
        return bounds_phrase(self.low, self.high, self.above, self.below)

    def within(self, value) -> bool:
        """Whether `value` keeps the bounds (NaN never does)."""
        return ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above)
                and (self.below is None or value < self.below))

    def problem(self, name: str, value) -> Optional[str]:
        """The error template of `value` for setting `name`, or None when it is allowed."""
        if self.choices and value not in self.choices:
            return f"{ref(name)} must be one of {', '.join(map(str, self.choices))}, got {value!r}"
        if value is not None and not self.within(value):
            note = f" ({self.note})" if self.note else ""
            return f"{ref(name)} {self.bounds()}{note}, got {value}"
        return None

    def describe(self) -> str:
        """The constraint for --help: "one of: a, b", ">= 1", or ""."""
        if self.choices:
            return f"one of: {', '.join(map(str, self.choices))}"
        return described(self.bounds())


def setting(default: Any, help: str, group: str, **declared) -> Any:
    """A dataclass field with `default` and a `Setting(help, group, **declared)`:

        batch_size: int = setting(25, "Global batch size.", TRAINING, low=1)
    """
    return dataclasses.field(default=default,
                             metadata={_METADATA_KEY: Setting(help, group, **declared)})


def declaration(cls: type, name: str) -> Optional[Setting]:
    """The Setting of field `name` of dataclass `cls`: the one of the nearest class in
    its MRO that declares the field with one (None: the field is no setting)."""
    for klass in cls.__mro__:
        field = vars(klass).get("__dataclass_fields__", {}).get(name)
        if field is not None and _METADATA_KEY in field.metadata:
            return field.metadata[_METADATA_KEY]
    return None


def settings(cls: type) -> Iterator[tuple[dataclasses.Field, Setting]]:
    """(field, its Setting) of every declared field of dataclass `cls`, in field order."""
    for field in dataclasses.fields(cls):
        declared = declaration(cls, field.name)
        if declared is not None:
            yield field, declared


def check(instance) -> None:
    """Raises SettingError for the first declared field of `instance` whose value is
    not one of its choices or breaks its bounds. Enum members become their values, so
    `variant=Variant.GAN` and `variant="gan"` make the same settings."""
    for field, declared in settings(type(instance)):
        value = getattr(instance, field.name)
        if isinstance(value, enum.Enum):
            value = value.value
            object.__setattr__(instance, field.name, value)
        template = declared.problem(field.name, value)
        if template:
            raise SettingError(template)


def value_type(field: dataclasses.Field) -> type:
    """The type of a field's values: bool, int, float, str, or tuple (of str), with
    Optional[...] unwrapped."""
    kind = field.type
    if typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    return typing.get_origin(kind) or kind
