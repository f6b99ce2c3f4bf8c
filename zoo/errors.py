"""One-line descriptions of the errors a user can cause, for the ``zoo`` command.

Two kinds of error are condensed into one line that names the cause (and, where one exists, the fix):

- :func:`describe_parse_error`: jsonargparse's multi-line reports of a bad command line or config (an unknown key, a
  wrongly typed value, a class that cannot be used), with a "did you mean" suggestion for typos;
- :func:`describe_run_error`: errors raised while a command runs (a bad value, unreadable data, a missing device or
  package, out of memory, a checkpoint that does not fit), or ``None`` for errors that are bugs.

The command prints the line after ``zoo: error:``; ``ZOO_TRACEBACK=1`` shows the traceback instead. Only the standard
library is imported at module level; torch and Lightning are imported when a run error is described.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Sequence
from typing import Any

from zoo.weights import HashMismatchError, WeightsUnavailableError

__all__ = [
    "describe_parse_error",
    "describe_instantiation_error",
    "describe_run_error",
    "did_you_mean",
    "is_out_of_memory",
]


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """`` (did you mean 'X'?)`` for the candidate closest to a mistyped ``name``, or ``""`` when none is close."""
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _readable_type(text: str) -> str:
    """A type as jsonargparse prints it, made readable: ``<class 'int'>`` -> ``int``, ``Literal[a]`` -> ``one of a``."""
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text.strip())
    if literal:
        return f"one of {literal.group(1)}"
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    return text.replace("typing.", "")


def _init_parameters(class_path: str) -> list[str]:
    """Constructor argument names of the class at ``class_path`` (empty when it cannot be imported)."""
    import importlib

    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        params = inspect.signature(cls.__init__).parameters.values()
    except (ImportError, AttributeError, ValueError, TypeError):
        return []
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def describe_parse_error(message: str, known_keys: Sequence[str] = ()) -> str:
    """Condense one of jsonargparse's multi-line parse errors into one line that names the key.

    Args:
        message: the text of the ``ArgumentError``.
        known_keys: dotted option names of the parser (``trainer.max_steps``), used to suggest a fix for typos.

    Example:
        >>> describe_parse_error('Parser key "trainer.max_steps":\\n  Expected a <class \\'int\\'>. Got value: ten')
        "bad value 'ten' for 'trainer.max_steps': expected int"
    """
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        return f"unknown command '{choice.group(1)}'{did_you_mean(choice.group(1), options)}"
    not_accepted = re.search(r"does not accept option '([^']+)'", message)
    if not_accepted:
        key = not_accepted.group(1)
        return f"unknown option '{key}'{did_you_mean(key, known_keys)}"
    unrecognized = re.search(r"unrecognized arguments: (\S+)", message)
    if unrecognized:
        key = unrecognized.group(1).lstrip("-").split("=", 1)[0]
        return f"unknown option '{key}'{did_you_mean(key, known_keys)}"
    missing_file = re.search(r'Parser key "(\w*config\w*)":\s*File does not exist: (.*)', message)
    if missing_file:
        return f"config file not found: {missing_file.group(2).strip()}"

    keys = re.findall(r'Parser key "([^"]+)"', message)
    outer = keys[0] if keys else ""
    class_path = re.search(r"Problem with given class_path '([^']+)'", message)
    unknown = re.search(r"Option '([^']+)' is not accepted", message)
    if unknown:
        name = unknown.group(1)
        key = f"{outer}.init_args.{name}" if outer and class_path else name
        candidates = _init_parameters(class_path.group(1)) if class_path else known_keys
        return f"unknown option '{key}'{did_you_mean(name, candidates)}"
    if class_path and len(keys) <= 1:
        # the class itself failed (not one of its arguments): the line after the class path says why
        after = message[class_path.end() :].lstrip(": \n").splitlines()
        reason = after[0].strip(" :-") if after else ""
        return f"bad value for '{outer}': cannot use class '{class_path.group(1)}'" + (f" ({reason})" if reason else "")
    expected = re.search(r"Expected a (.*?)\. Got value: (.*)", message)
    if expected:
        key = outer
        if class_path and len(keys) > 1:
            key = f"{outer}.init_args.{keys[-1]}"
        return f"bad value '{expected.group(2).strip()}' for '{key}': expected {_readable_type(expected.group(1))}"
    given = re.search(r"Given value: (.*)", message)
    not_subclass = re.search(r"Import path (?:(\S+) )?does not correspond to a subclass of (\w+)", message)
    if not_subclass and outer:
        name = not_subclass.group(1) or (given.group(1).strip() if given else "the class")
        return f"bad value for '{outer}': {name} is not a subclass of {not_subclass.group(2)}"
    if "Does not validate against any of the Union subtypes" in message and given and outer:
        alternatives = []
        for line in re.findall(r"- Expected a (.*)", message):
            if " but " in line:
                continue
            text = "a class path" if line.startswith("dot import path") else _readable_type(line.strip())
            alternatives.append("null" if "NoneType" in text else text)
        if alternatives:
            return f"bad value '{given.group(1).strip()}' for '{outer}': expected {' or '.join(alternatives)}"
    not_importable = re.search(r"Expected a dot import path string: (\S+)", message) or re.search(
        r"Import path (\S+) does not", message
    )
    if not_importable and outer:
        return f"bad value for '{outer}': cannot import class '{not_importable.group(1)}'"
    # anything else: the first line that says something, with the key
    lines = [line.strip(" -") for line in message.splitlines() if line.strip(" -")]
    skip = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "Given value", "Expected a <class 'NoneType'>")
    detail = next((line for line in lines if not line.startswith(skip)), lines[0] if lines else message)
    return f"bad value for '{outer}': {detail}" if outer else detail


def describe_instantiation_error(message: str) -> str:
    """One line for a constructor's error, without the union-type report jsonargparse wraps it in."""
    if "Does not validate against any of the Union subtypes" not in message:
        return message.strip()
    reasons = [
        line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ") and "NoneType" not in line
    ]
    class_path = re.search(r"class_path='([^']+)'", message)
    reason = reasons[0] if reasons else message.strip().splitlines()[0]
    return f"cannot create {class_path.group(1)}: {reason}" if class_path else reason


def _config_keys_with_value(config: Any, value: str, prefix: str = "") -> list[str]:
    """Dotted keys of a (nested) config whose value prints as ``value``."""
    items = config.items() if isinstance(config, dict) else vars(config).items() if hasattr(config, "__dict__") else ()
    keys = []
    for key, item in items:
        name = f"{prefix}{key}"
        if isinstance(item, dict) or hasattr(item, "__dict__") and not isinstance(item, type):
            keys += _config_keys_with_value(item, value, f"{name}.")
        elif str(item) == value:
            keys.append(name)
    return keys


def is_out_of_memory(error: BaseException) -> bool:
    """A CUDA/MPS out-of-memory error, or a CPU allocation that failed (``can't allocate memory``)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def describe_run_error(error: BaseException, config: Any = None) -> str | None:
    """One line for an error a user can cause while a command runs (bad value, data, device, precision, checkpoint),
    naming the cause and the fix; ``None`` for anything else (a bug: the traceback is shown).

    Args:
        error: the exception.
        config: the resolved config, used to name the key behind an out-of-range value.
    """
    import pickle

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    if is_out_of_memory(error):
        return f"out of memory ({first}); lower data.init_args.batch_size or the image/crop size"
    if isinstance(error, FloatingPointError):  # the NaN/Inf guard: its message names the loss term and the iteration
        return first
    if isinstance(error, pickle.UnpicklingError):
        return f"refusing to unpickle: {first}"
    if isinstance(error, MisconfigurationException):
        message = " ".join(lines)
        if re.search(r"accelerator|gpu backend|not available", message, re.IGNORECASE):
            message += " Pass --trainer.accelerator=auto (or cpu) to use what this machine has."
        return message
    if isinstance(error, ImportError):  # an option that needs a package that is not installed
        return f"{first}; install it, or choose a setting that does not need it"
    invalid = re.match(r"Invalid ([\w ]+?)(?: value)?: (\S+)$", first)
    if isinstance(error, ValueError) and invalid:  # torch.optim's checks: name the config key that holds the value
        keys = [k for k in _config_keys_with_value(config, invalid.group(2)) if k.startswith("model.")]
        if keys:
            return f"{keys[0]}={invalid.group(2)} is not a valid {invalid.group(1)}; set it to a value in range"
        return f"{first}; check the model's optimizer settings"
    too_small = ("Padding size should be less than", "Kernel size can't be greater than", "Output size is too small",
                 "Expected more than 1 spatial element")  # the last: instance norm over a 1x1 feature map
    if isinstance(error, (RuntimeError, ValueError)) and any(text in first for text in too_small):
        return (f"the images are too small for this network ({first}); use larger images (data.init_args.crop_size "
                "or image_size) or a network with fewer down-sampling layers")
    if isinstance(error, RuntimeError) and "Error(s) in loading state_dict" in first:
        return (f"the checkpoint does not fit this model ({first}); use the config the checkpoint was trained with "
                "(its run folder's config.yaml)")
    if isinstance(error, (WeightsUnavailableError, HashMismatchError)):  # keep every line: file, URL, folders
        return " ".join(lines)
    if isinstance(error, (ValueError, OSError, KeyError, MisconfigurationException)):
        return " ".join(lines) if len(lines) <= 3 else first
    return None
