"""The ``compile`` option of every method (:mod:`zoo.compile`): what it compiles, that it keeps state dicts and files
as they are, and that compiled training traces without graph breaks and without recompiling.

By default the training checks trace with dynamo and run the captured graphs eagerly (``backend: eager``: graph
breaks and recompiles are decided by dynamo, so they are the same as with inductor, in seconds); ``-m slow`` runs
the same checks with inductor, the default backend, generating C++ code on this CPU.
"""

from __future__ import annotations

import copy
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

import zoo
from tests.methods.test_common import METHODS, _build_model
from zoo.compile import CompileOptions, compile_networks, compile_options, count_graph_breaks, is_compiled, reset
from zoo.hub import load_bundle, save_bundle

REPO = Path(__file__).resolve().parents[2]
#: Graph breaks measured in one compiled training iteration of each tiny config (a ceiling: lower is fine).
GRAPH_BREAKS_AT_MOST: dict[str, int] = {}
ITERATIONS = 10


def test_compile_option_values():
    assert compile_options(False) is None and compile_options(None) is None
    assert compile_options(True) == CompileOptions()
    assert compile_options(True).kwargs() == {"dynamic": False, "fullgraph": False, "backend": "inductor",
                                              "options": {"layout_optimization": False}}
    options = compile_options({"mode": "max-autotune-no-cudagraphs", "dynamic": True})
    # the mode travels as its inductor settings, beside zoo's
    assert options.kwargs()["options"] == {"max_autotune": True, "coordinate_descent_tuning": True,
                                           "layout_optimization": False} and options.dynamic is True
    assert "options" not in compile_options({"backend": "aot_eager"}).kwargs()
    with pytest.raises(ValueError, match="unknown compile option.*'modes'"):
        compile_options({"modes": "default"})
    with pytest.raises(ValueError, match="compile mode must be one of"):
        compile_options({"mode": "fast"})
    with pytest.raises(ValueError, match="inductor mode"):
        compile_options({"mode": "max-autotune", "backend": "eager"})
    with pytest.raises(ValueError, match="true, false or a mapping"):
        compile_options("yes")


@pytest.mark.parametrize("name", METHODS)
def test_compile_keeps_parameter_names_and_copies_stay_eager(name):
    torch.manual_seed(0)
    eager, _ = _build_model(name)
    torch.manual_seed(0)
    compiled, _ = _build_model(name, compile=True)
    assert compiled.compile_options == CompileOptions() and eager.compile_options is None
    assert compiled.compiled_networks, f"{name} compiles nothing"
    assert all(is_compiled(compiled.get_submodule(path)) for path in compiled.compiled_networks)
    assert not any(is_compiled(m) for m in eager.modules())
    # the same names and values: checkpoints, bundles and official weights are unchanged by compile
    assert list(compiled.state_dict()) == list(eager.state_dict())
    pairs = zip(compiled.state_dict().values(), eager.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not any(is_compiled(m) for m in copy.deepcopy(compiled).modules())


def test_files_load_eager_and_a_loaded_model_compiles_on_request(tmp_path):
    model, _ = _build_model("pix2pix", compile=True)
    save_bundle(model, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.compile_options is None and not any(is_compiled(m) for m in loaded.modules())
    loaded.use_compile({"backend": "eager"})
    assert all(is_compiled(loaded.get_submodule(p)) for p in loaded.compiled_networks)
    assert zoo.load(str(tmp_path / "bundle")).compile_options is None


def _compiled_training(name: str, backend: str) -> None:
    reset()
    counters.clear()
    torch.manual_seed(0)
    model, size = _build_model(name, compile={"backend": backend})
    model.setup("fit")
    model.train()
    inputs = model.in_training_layout(model.example_inputs(2, size, generator=torch.Generator().manual_seed(0)))
    optimizers, _ = model.configure_optimizers()
    optimizers = optimizers if isinstance(optimizers, (list, tuple)) else [optimizers]
    warmup = model.schedule_cycle
    for iteration in range(ITERATIONS):
        if iteration == warmup:
            graphs = counters["stats"]["unique_graphs"]
        out = model.optimization_step(*inputs, *optimizers, **model.optimization_options(iteration))
        assert all(math.isfinite(float(v)) for v in out.losses.values()), f"iteration {iteration}: {out.losses}"
    frames = counters["frames"]
    assert frames["total"] == frames["ok"], f"frames run eagerly after all: {dict(counters['unimplemented'])}"
    breaks = sum(counters["graph_break"].values())
    assert breaks <= GRAPH_BREAKS_AT_MOST.get(name, 0), dict(counters["graph_break"])
    assert counters["stats"]["unique_graphs"] >= len(model.compiled_networks) // 2  # the networks did run compiled
    assert counters["stats"]["unique_graphs"] == graphs, (
        f"{name} compiled new graphs after iteration {warmup}: static shapes should compile each graph once")
    reset()


#: One method of each compile pattern in the default run: whole networks (pix2pix, CycleGAN), networks compiled part
#: by part (MUNIT, DRIT, LOMIT, VSAIT), a random choice among compiled heads (SRUNIT); the others with ``-m slow``.
TRACED_DEFAULT = {"pix2pix", "cyclegan", "munit", "drit", "lomit", "vsait", "srunit"}


@pytest.mark.parametrize("name", [n if n in TRACED_DEFAULT else pytest.param(n, marks=pytest.mark.slow)
                                  for n in METHODS])
def test_compiled_training_has_no_graph_breaks_and_no_recompiles(name):
    _compiled_training(name, "eager")


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_compiled_training_with_inductor(name):
    _compiled_training(name, "inductor")


@pytest.mark.parametrize(("name", "options", "eager"), [
    ("drit", {"eg_update": "legacy"}, ("enc_c", "enc_a", "gen")),
    ("drit", {"eg_update": "clean"}, ()),
    ("srunit", {"reg_type": "v1", "reg": 0.5}, ("generator",)),
    ("srunit", {"reg_type": "v2", "reg": 0.5}, ()),
])
def test_networks_a_backward_revisits_stay_eager(name, options, eager):
    """DRIT's legacy second update back-propagates through a graph whose weights were stepped, SRUNIT's v1
    regulariser through the generator's graph a second time: those networks stay eager (measured under inductor:
    DRIT's content-encoder gradients 4% off, SRUNIT's refused or 1e9 off), the others compile."""
    reset()
    model, _ = _build_model(name, compile={"backend": "aot_eager"}, **options)
    assert model.eager_networks == eager
    assert not any(is_compiled(m) for path in eager for m in model.get_submodule(path).modules())
    compiled = {path.split(".")[0] for path in model.compiled_networks}
    assert not compiled & set(eager) and compiled
    assert all(is_compiled(model.get_submodule(path)) for path in model.compiled_networks)
    reset()


@pytest.mark.parametrize("name, options", [("pix2pix", {"gan_mode": "wgangp", "lambda_gp": 10.0}), ("lomit", {})])
def test_networks_under_a_gradient_penalty_stay_eager_and_train(name, options):
    """``aot_autograd`` (inductor's and ``aot_eager``'s autograd) cannot differentiate a compiled backward again."""
    reset()
    torch.manual_seed(0)
    model, size = _build_model(name, compile={"backend": "aot_eager"}, **options)
    assert model.eager_networks == ("discriminator",)
    assert "discriminator" not in model.compiled_networks and not is_compiled(model.discriminator)
    assert is_compiled(model.get_submodule(model.compiled_networks[0]))
    model.train()
    optimizers, _ = model.configure_optimizers()
    inputs = model.in_training_layout(model.example_inputs(2, size, generator=torch.Generator().manual_seed(0)))
    out = model.optimization_step(*inputs, *optimizers, **model.optimization_options(0))
    assert all(math.isfinite(float(v)) for v in out.losses.values())
    reset()


@pytest.mark.parametrize("zoo_options", [True, False], ids=["zoo", "plain-torch-compile"])
def test_compiled_graphs_keep_the_memory_format_they_are_given(zoo_options, monkeypatch):
    """Inductor converts every graph with a convolution to channels-last on CPU unless told not to; networks compiled
    by zoo keep the layout the ``channels_last`` option chose (NCHW here). The plain ``torch.compile`` case shows the
    check sees the conversion."""
    import torch._functorch.config
    import torch._inductor.config
    import torch._inductor.graph

    decisions = []
    decide = torch._inductor.graph.GraphLowering.decide_layout_opt

    def recording(gm, *, is_inference):
        decisions.append(decide(gm, is_inference=is_inference))
        return decisions[-1]

    monkeypatch.setattr(torch._inductor.graph.GraphLowering, "decide_layout_opt", staticmethod(recording))
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.InstanceNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 3, 3, padding=1))
    reset()
    try:  # graphs lowered here: a cached graph is not lowered again
        with torch._inductor.config.patch(fx_graph_cache=False), \
                torch._functorch.config.patch(enable_autograd_cache=False):
            if zoo_options:
                compile_networks([net], CompileOptions())
            else:
                net.compile(dynamic=False)
            x = torch.randn(2, 3, 16, 16, requires_grad=True)
            out = net(x)
            out.sum().backward()
    finally:
        reset()
    assert decisions, "inductor lowered no graph"
    assert out.is_contiguous() and x.grad.is_contiguous()
    assert any(decisions) != zoo_options  # one decision per graph lowered (forward, backward)


def test_count_graph_breaks_reports_a_break_and_its_reason():
    def fn(x):
        x = x * 2
        print("side effect")  # dynamo cannot trace print: one break
        return x + 1

    count, reasons = count_graph_breaks(fn, torch.ones(2))
    assert count == 1 and reasons and "print" in " ".join(reasons).lower()


def test_zoo_fit_with_compile_as_a_user_runs_it(tmp_path):
    """The README's command: a shipped tiny config, ``--model.init_args.compile``, the default logger."""
    env = {**os.environ, "WANDB_MODE": "offline", "ZOO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    zoo_command = Path(sys.executable).with_name("zoo")
    command = [str(zoo_command)] if zoo_command.is_file() else [sys.executable, "-m", "zoo"]
    result = subprocess.run([*command, "fit", "--config", str(REPO / "configs/tiny/pix2pix.yaml"),
                             "--model.init_args.compile={backend: aot_eager}", "--trainer.max_steps=3"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fit finished after 3 iterations" in result.stdout
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert state["hyper_parameters"]["compile"] == {"backend": "aot_eager"}
    assert not any("_orig_mod" in key for key in state["state_dict"])  # compiled in place: the eager names
