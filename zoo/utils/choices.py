"""The string choices of options typed with ``Literal``, checked where no parser checks them.

The ``zoo`` command's parser refuses ``lr_step_at: epoch-end`` from the type hint alone; a model built in Python
(``CycleGAN(lr_step_at="epoch-end")``, ``zoo.create``) has no parser, and an unknown string could otherwise select
nothing without a word (a schedule that never steps). :func:`check_choices` gives the Python API the same check.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

__all__ = ["check_choices", "string_choices"]


@functools.cache
def string_choices(function: Callable[..., Any]) -> dict[str, tuple[tuple[str, ...], str]]:
    """Parameter name -> (the strings its type allows, how its other allowed values read: ``""``, ``"a bool"``),
    for the parameters of ``function`` typed with a ``Literal`` of strings (alone or in a union, e.g.
    ``bool | Literal["auto"]``) and not also with plain ``str``. Annotations that cannot be resolved (names imported
    only for type checkers) make the result empty: nothing is checked then."""
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError, AttributeError):
        return {}
    choices: dict[str, tuple[tuple[str, ...], str]] = {}
    for name, hint in hints.items():
        members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
        if str in members:
            continue
        literals = [member for member in members if typing.get_origin(member) is Literal]
        allowed = tuple(value for member in literals for value in typing.get_args(member) if isinstance(value, str))
        if allowed:
            others = [_describe(member) for member in members if member not in literals]
            choices[name] = allowed, " or ".join(others)
    return choices


def _describe(member: Any) -> str:
    if member is type(None):
        return "None"
    return f"a {member.__name__}" if isinstance(member, type) else f"a {member}"


def check_choices(functions: Iterable[Callable[..., Any]], values: Mapping[str, Any], owner: str) -> None:
    """Raise a ``ValueError`` naming the option and its choices for the first string in ``values`` that the
    ``Literal`` type of its parameter (in the first of ``functions`` declaring it) does not allow.

    Args:
        functions: the constructors that take the options, most derived first (a subclass forwarding ``**kwargs``
            to its parent's ``__init__`` lists both).
        values: option name -> value (``model.hparams``); values that are not strings are left to their own checks.
        owner: what the options belong to, for the message (``"CycleGAN"``).
    """
    declared: dict[str, tuple[tuple[str, ...], str]] = {}
    for function in functions:
        declared = {**string_choices(function), **declared}
    for name, (allowed, others) in declared.items():
        value = values.get(name)
        if isinstance(value, str) and value not in allowed:
            expected = ", ".join(map(repr, allowed)) + (f" (or {others})" if others else "")
            raise ValueError(f"{owner}: {name} must be one of {expected}; got {value!r}")
