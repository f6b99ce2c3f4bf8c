"""The training-step parity cases again, with every network of the method compiled (``compile``).

Each method's own parity check runs unchanged, at the manifests' tolerances; only the method's ``use_compile`` is
forced to the backend under test, so the model the check builds is compiled. Inductor's random numbers are its own
(``fallback_random`` keeps torch's, as the fixtures' dropout and noise draws need).

Default run: dynamo's tracing with the captured graphs run eagerly (``eager``), which proves that tracing keeps
every in-place update the official step makes (BatchNorm statistics, spectral-norm vectors, EMA, hooks). ``-m slow``:
inductor, the default backend, with its generated C++ kernels.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable

import pytest
import torch
import torch._inductor.config

from tests.parity import cut_family
from tests.parity.manifest import cases, load_tensors
from zoo.compile import CompileOptions, reset
from zoo.methods.base import TranslationMethod
from zoo.methods.cut import CUT
from zoo.methods.srunit import SRUNIT

pytestmark = pytest.mark.parity

#: parity folder -> (test module, its per-case test function)
PARITY_TESTS = {
    "pix2pix_cyclegan": ("tests.parity.test_pix2pix_cyclegan", "test_official_parity"),
    "munit": ("tests.parity.test_munit", "test_munit_case"),
    "drit": ("tests.parity.test_drit", "test_case"),
    "lomit": ("tests.parity.test_lomit", "test_lomit_case"),
    "vsait": ("tests.parity.test_vsait", "test_vsait_case"),
    "decent": ("tests.parity.test_decent", "test_decent_case"),
    "cut": ("tests.parity.test_cut", "test_cut_case"),
    "srunit": ("tests.parity.test_srunit", "test_srunit_case"),
    "pix2pixhd": ("tests.parity.test_pix2pixhd", "test_official_parity"),
    "srgan": ("tests.parity.test_srgan", "test_srgan_case"),
    "instaformer": ("tests.parity.test_instaformer", "test_instaformer_case"),
}
#: Methods whose training cases the default run traces (the others: ``-m slow``).
DEFAULT = ("pix2pix_cyclegan",)
#: Parity folders whose single-image training cases hold the oracle's gradients with PyTorch's CPU instance-norm
#: defect for one image (:func:`zoo.nets.norm.reproduce_single_image_gradient_defect`): inductor decomposes instance
#: norm and computes the true gradient, so under inductor these cases are checked against zoo's eager step with the
#: true gradient (:func:`tests.parity.cut_family.check_compiled_train_step`); the eager parity tests check that step
#: against the oracle with the defect brought back.
TRUE_GRADIENT_REFERENCE = {"cut": CUT, "srunit": SRUNIT}


def _is_training_case(case: dict) -> bool:
    """A case that runs the method's training iteration (kinds ``*train_step*``, ``train``; DECENT and VSAIT name
    theirs ``train_step``)."""
    kind = case.get("kind")
    return kind == "train" or "step" in str(kind or "") or (kind is None and "train_step" in case["name"])


def _training_cases(backend: str) -> list:
    params = []
    for folder, (module, function) in PARITY_TESTS.items():
        for param in cases(folder):
            case = param.values[0]
            if not isinstance(case, dict) or not _is_training_case(case):
                continue
            slow = backend != "eager" or folder not in DEFAULT
            marks = [pytest.mark.slow] if slow else []
            params.append(pytest.param(folder, module, function, case, id=f"{folder}-{case['name']}", marks=marks))
    return params


def _run_compiled(check: Callable[[], None], backend: str, monkeypatch) -> None:
    use_compile = TranslationMethod.use_compile
    options = CompileOptions(backend=backend)
    monkeypatch.setattr(TranslationMethod, "use_compile", lambda self, setting: use_compile(self, options))
    reset()
    try:
        with torch._inductor.config.patch(fallback_random=True):
            check()
    finally:
        reset()


def _parity_check(module: str, function: str, case: dict) -> Callable[[], None]:
    return functools.partial(getattr(importlib.import_module(module), function), case)


def _checked_against_true_gradient(folder: str, case: dict) -> bool:
    """A single-image training case of a :data:`TRUE_GRADIENT_REFERENCE` folder."""
    single_image = case.get("spec", {}).get("input_shape", [0])[0] == 1
    return folder in TRUE_GRADIENT_REFERENCE and case.get("kind") == "train" and single_image


def _inductor_check(folder: str, module: str, function: str, case: dict) -> Callable[[], None]:
    if not _checked_against_true_gradient(folder, case):
        return _parity_check(module, function, case)
    return functools.partial(cut_family.check_compiled_train_step, case, load_tensors(case),
                             TRUE_GRADIENT_REFERENCE[folder])


@pytest.mark.parametrize(("folder", "module", "function", "case"), _training_cases("eager"))
def test_training_step_parity_traced(folder, module, function, case, monkeypatch):
    _run_compiled(_parity_check(module, function, case), "eager", monkeypatch)


@pytest.mark.parametrize(("folder", "module", "function", "case"), _training_cases("inductor"))
def test_training_step_parity_with_inductor(folder, module, function, case, monkeypatch):
    _run_compiled(_inductor_check(folder, module, function, case), "inductor", monkeypatch)


def test_every_parity_folder_is_run_compiled():
    from tests.parity.manifest import reference_dir

    folders = {p.parent.name for p in reference_dir().glob("*/MANIFEST.json")}
    missing = sorted(folders - set(PARITY_TESTS))
    assert not missing, f"add the parity tests of {missing} to PARITY_TESTS"


def test_true_gradient_reference_is_zoos_step_and_differs_from_the_oracle_by_the_defect():
    """The reference of the single-image CUT-family cases under inductor: zoo's eager step replayed against it
    passes, and it differs from the oracle beyond the gradient tolerances for some case (the oracle's defect)."""
    outside = []
    for folder, method_cls in TRUE_GRADIENT_REFERENCE.items():
        for param in cases(folder):
            case = param.values[0]
            if not _checked_against_true_gradient(folder, case):
                continue
            t = load_tensors(case)
            reference = cut_family.eager_true_gradient_fixture(case, t, method_cls)
            cut_family._replay_train_step(case, reference, method_cls)
            per_tensor = case["tolerance"]["per_category"]["grad"]["per_tensor_atol"]
            outside += [key for key, atol in per_tensor.items() if (reference[key] - t[key]).abs().max() > atol]
            if outside:
                return
    pytest.fail("no single-image case's oracle gradients differ from the true gradient; the defect is gone "
                "(check_train_step need not bring it back)")
