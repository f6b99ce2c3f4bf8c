"""Options typed with ``Literal`` strings are checked when a model is built in Python, as the CLI's parser does."""

from __future__ import annotations

import typing
from typing import Literal

import pytest

import zoo
from tests.methods.tiny_configs import build_tiny_model
from zoo.registry import get_method
from zoo.utils.choices import check_choices, string_choices


def _literal_options(cls: type) -> list[str]:
    """Options of ``cls`` and of the method classes it forwards ``**kwargs`` to, typed with string Literals."""
    names = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not klass.__module__.startswith("zoo.methods"):
            continue
        for name, hint in typing.get_type_hints(init).items():
            members = typing.get_args(hint) if typing.get_origin(hint) is not Literal else (hint,)
            if str not in members and any(typing.get_origin(m) is Literal and isinstance(typing.get_args(m)[0], str)
                                          for m in (*members, hint)):
                names.append(name)
    return sorted(set(names))


@pytest.mark.parametrize("name,option", [(name, option) for name in zoo.list_models()
                                         for option in _literal_options(get_method(name))])
def test_every_method_refuses_an_unknown_choice_when_built_and_names_the_option(name, option):
    with pytest.raises(ValueError, match=rf"{option} must be one of .*; got 'no-such-choice'"):
        build_tiny_model(name, **{option: "no-such-choice"})


def test_a_schedule_typo_no_longer_builds_a_model_whose_learning_rate_never_steps():
    with pytest.raises(ValueError, match="CycleGAN: lr_step_at must be one of 'epoch_end', 'epoch_start'"):
        zoo.create("cyclegan", lr_step_at="epoch-end")
    model = zoo.create("cyclegan", lr_step_at="epoch_start", channels_last=False)
    assert (model.hparams.lr_step_at, model.hparams.channels_last) == ("epoch_start", False)


def test_choices_read_unions_and_leave_plain_strings_and_unresolvable_hints_alone():
    def options(*, mode: Literal["a", "b"] = "a", layout: bool | Literal["auto"] = "auto",
                maybe: Literal["x"] | None = None, free: str | Literal["y"] = "y", count: int = 1) -> None: ...

    assert string_choices(options) == {"mode": (("a", "b"), ""), "layout": (("auto",), "a bool"),
                                       "maybe": (("x",), "None")}
    check_choices([options], {"mode": "b", "layout": True, "maybe": None, "free": "anything"}, "thing")
    with pytest.raises(ValueError, match=r"thing: layout must be one of 'auto' \(or a bool\); got 'on'"):
        check_choices([options], {"layout": "on"}, "thing")

    def unresolvable(*, mode: NotImportedHere = "a") -> None: ...  # noqa: F821

    assert string_choices(unresolvable) == {}


def test_a_subclass_forwarding_kwargs_is_checked_against_its_parents_options_too():
    with pytest.raises(ValueError, match="SRUNIT: lr_policy must be one of"):
        zoo.create("srunit", lr_policy="no-such-policy")
    with pytest.raises(ValueError, match="SRUNIT: reg_type must be one of 'v1', 'v2'"):
        zoo.create("srunit", reg_type="v3")
