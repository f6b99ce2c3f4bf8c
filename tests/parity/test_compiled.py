"""The training-step parity cases again, with every network of the method compiled (``compile``).

Each method's own parity check runs unchanged, at the manifests' tolerances; only the method's ``use_compile`` is
forced to the backend under test, so the model the check builds is compiled. Inductor's random numbers are its own
(``fallback_random`` keeps torch's, as the fixtures' dropout and noise draws need).

Default run: dynamo's tracing with the captured graphs run eagerly (``eager``), which proves that tracing keeps
every in-place update the official step makes (BatchNorm statistics, spectral-norm vectors, EMA, hooks). ``-m slow``:
inductor, the default backend, with its generated C++ kernels.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch._inductor.config

from tests.parity.manifest import cases
from zoo.compile import CompileOptions, reset
from zoo.methods.base import TranslationMethod

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
#: Methods (parity folder) or cases (``folder-case``) whose inductor run is known to miss the manifests' tolerances,
#: and what was measured; each passes traced with dynamo (``test_training_step_parity_traced``).
INDUCTOR_OUTSIDE_TOLERANCE = {
    "instaformer": "InstaFormer's generator gradients hinge on float32 rounding (a ReLU input of 9e-7 in exact "
                   "arithmetic changes side with two threads): inductor's fused kernels put Decoder.model.9.bias "
                   "2.8e-4 off against a tolerance of 1.9e-4",
    "drit-train_iter_concat_ms": "the float64 step under inductor: grad.update_G_alone.enc_c.convA.0.model.1.bias "
                                 "4% off (3.8e-3 against 1e-10); cause not established",
    "decent-train_step": "the float64 replay of a model compiled in float32 fails in inductor's flow graph (float "
                         "and double operands of one matmul); cause not established",
    "srunit-train_srunit_v2_defaults": "generator gradients far off under inductor (grad.step1_G.G.model.1.weight by "
                                       "317 against 0.026), possibly the regulariser's noise drawn again when "
                                       "inductor recomputes it for the backward with fallback_random; not established",
}


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
            known = INDUCTOR_OUTSIDE_TOLERANCE.get(f"{folder}-{case['name']}", INDUCTOR_OUTSIDE_TOLERANCE.get(folder))
            if backend == "inductor" and known is not None:
                marks.append(pytest.mark.xfail(reason=known, strict=True))
            params.append(pytest.param(module, function, case, id=f"{folder}-{case['name']}", marks=marks))
    return params


def _run_compiled(module: str, function: str, case: dict, backend: str, monkeypatch) -> None:
    use_compile = TranslationMethod.use_compile
    options = CompileOptions(backend=backend)
    monkeypatch.setattr(TranslationMethod, "use_compile", lambda self, setting: use_compile(self, options))
    reset()
    try:
        with torch._inductor.config.patch(fallback_random=True):
            getattr(importlib.import_module(module), function)(case)
    finally:
        reset()


@pytest.mark.parametrize(("module", "function", "case"), _training_cases("eager"))
def test_training_step_parity_traced(module, function, case, monkeypatch):
    _run_compiled(module, function, case, "eager", monkeypatch)


@pytest.mark.parametrize(("module", "function", "case"), _training_cases("inductor"))
def test_training_step_parity_with_inductor(module, function, case, monkeypatch):
    _run_compiled(module, function, case, "inductor", monkeypatch)


def test_every_parity_folder_is_run_compiled():
    from tests.parity.manifest import reference_dir

    folders = {p.parent.name for p in reference_dir().glob("*/MANIFEST.json")}
    missing = sorted(folders - set(PARITY_TESTS))
    assert not missing, f"add the parity tests of {missing} to PARITY_TESTS"
