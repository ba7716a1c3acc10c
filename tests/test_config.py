import dataclasses
import enum
import math
from typing import Optional

import pytest

from tf_factorgan import config
from tf_factorgan.config import EVALUATION, MODEL, TRAINING, SettingError, setting


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Base:
    steps: int = setting(5, "Updates; see {rate}.", TRAINING, low=0, note="0 = none")
    rate: float = setting(0.5, "Learning rate.", TRAINING, above=0)
    share: float = setting(0.0, "Held out.", EVALUATION, low=0.0, below=1.0)
    colour: str = setting("red", "Colour.", MODEL, choices=("red", "blue"))
    cache: Optional[str] = setting(None, "Cache folder.", EVALUATION)
    names: tuple[str, ...] = setting((), "Names.", EVALUATION)
    hidden: float = setting(1.0, "Set by programs.", MODEL, flag=False)
    internal: int = 3  # no setting

    def __post_init__(self):
        config.check(self)


@dataclasses.dataclass(frozen=True)
class Longer(Base):
    steps: int = 40  # a new default; the declaration stays Base's
    colour: str = setting("green", "Colour, green too.", MODEL, choices=("red", "blue", "green"))


def _message(**values) -> tuple[str, str]:
    with pytest.raises(SettingError) as raised:
        Base(**values)
    return str(raised.value), raised.value.as_flags()


def test_bounds_and_choices_fail_naming_the_setting_in_python_and_as_a_flag():
    assert _message(steps=-1) == ("steps must be >= 0 (0 = none), got -1",
                                  "--steps must be >= 0 (0 = none), got -1")
    assert _message(rate=0.0)[0] == "rate must be > 0, got 0.0"
    assert _message(rate=math.nan)[0] == "rate must be > 0, got nan"
    assert _message(share=1.0)[0] == "share must lie in [0, 1), got 1.0"
    assert _message(colour="green") == ("colour must be one of red, blue, got 'green'",
                                        "--colour must be one of red, blue, got 'green'")
    assert Base(share=0.999, cache=None).share == 0.999


def test_a_subclass_keeps_the_declaration_of_a_field_whose_default_it_changes():
    assert config.declaration(Longer, "steps") is config.declaration(Base, "steps")
    assert config.declaration(Longer, "steps").help == "Updates; see {rate}."
    assert config.declaration(Longer, "colour").choices == ("red", "blue", "green")
    assert config.declaration(Base, "internal") is None
    assert Longer().steps == 40 and Longer().colour == "green"
    with pytest.raises(SettingError, match="steps must be >= 0"):
        Longer(steps=-3)
    assert [field.name for field, _ in config.settings(Longer)] == [
        "steps", "rate", "share", "colour", "cache", "names", "hidden"]


def test_enum_members_become_their_values():
    assert Base(colour=Colour.BLUE).colour == "blue"


def test_value_types_unwrap_optional_and_tuples():
    types = {field.name: config.value_type(field) for field in dataclasses.fields(Base)}
    assert types == {"steps": int, "rate": float, "share": float, "colour": str, "cache": str,
                     "names": tuple, "hidden": float, "internal": int}


def test_templates_name_settings_bare_or_as_flags_and_leave_other_braces():
    template = "{kind}=a and {{'x': 1}} in <root>/{train,test}/ (see {out_path})"
    assert config.named(template) == "kind=a and {{'x': 1}} in <root>/{train,test}/ (see out_path)"
    assert config.named(template, "--") == (
        "--kind=a and {{'x': 1}} in <root>/{train,test}/ (see --out_path)")
    missing = config.SettingPathError("{run_dir} '/x' lacks generator.json")
    assert isinstance(missing, FileNotFoundError) and str(missing) == "run_dir '/x' lacks generator.json"
    assert config.flag_message(missing) == "--run_dir '/x' lacks generator.json"
    assert config.flag_message(ValueError("plain {x}")) == "plain {x}"


def test_bounds_phrases_and_help_constraints():
    assert config.bounds_phrase(low=1) == "must be >= 1"
    assert config.bounds_phrase(low=0, high=4) == "must lie in [0, 4]"
    assert config.bounds_phrase(above=0, below=2.5) == "must lie in (0, 2.5)"
    assert config.bounds_phrase() == ""
    assert config.declaration(Base, "share").describe() == "in [0, 1)"
    assert config.declaration(Base, "colour").describe() == "one of: red, blue"
    with pytest.raises(ValueError, match="group must be one of data, model"):
        config.Setting("help", "runtime")
