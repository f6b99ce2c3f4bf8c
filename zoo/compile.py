"""``torch.compile`` for a method's networks: the ``compile`` option every method takes.

``compile: false`` (default) runs eagerly. ``compile: true`` compiles each network with inductor and static shapes
(training batches keep their shape, so every graph is compiled once); a mapping picks ``mode``, ``dynamic``,
``fullgraph`` and ``backend`` (the arguments of :func:`torch.compile`)::

    model:
      init_args:
        compile: {mode: max-autotune-no-cudagraphs, dynamic: false}

Networks are compiled in place (:meth:`torch.nn.Module.compile`): parameter names, state dicts, checkpoints and
official-weight import are unchanged, copies (``copy.deepcopy``, pickling) are eager, and compilation happens at the
first call of each network, on whatever device and memory format it then has. Compiled graphs keep that memory
format (:data:`INDUCTOR_OPTIONS`): the method's ``channels_last`` option decides it, compiled or not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["INDUCTOR_OPTIONS", "CompileOptions", "CompileSetting", "compile_options", "compile_networks",
           "count_graph_breaks", "is_compiled", "reset"]

#: What the ``compile`` option of a method accepts.
CompileSetting = bool | dict[str, Any] | None

MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: Inductor settings of every compiled network, on top of its ``mode``'s. ``layout_optimization`` off: inductor would
#: otherwise convert every graph with a convolution to channels-last on CPU, overriding the layout the method's
#: ``channels_last`` option picked by measurement. Measured on a 2-core AVX-512 CPU, compiled fp32 training in one
#: run each, interleaved: NCHW pix2pix 1.10x and CycleGAN 1.08x as fast without the conversion, channels-last pix2pix
#: 1.01x; and DECENT's compiled generator gradients (float64 as the truth) 3x more accurate, as accurate as eager.
INDUCTOR_OPTIONS: dict[str, Any] = {"layout_optimization": False}


@dataclass(frozen=True)
class CompileOptions:
    """Arguments of :func:`torch.compile` for every network of a method.

    Args:
        mode: inductor's mode (``None``/``"default"``, ``"reduce-overhead"`` (CUDA graphs), ``"max-autotune"``,
            ``"max-autotune-no-cudagraphs"``).
        dynamic: ``False`` (default): static shapes, one graph per input shape; ``True``: shape-generic graphs
            (fewer compilations when image sizes vary, e.g. multi-scale training); ``None``: torch's heuristic.
        fullgraph: fail on any graph break instead of falling back to Python for that part.
        backend: ``"inductor"`` (default; C++/OpenMP on CPU, Triton on CUDA), or e.g. ``"aot_eager"`` to check
            tracing without code generation.
    """

    mode: str | None = None
    dynamic: bool | None = False
    fullgraph: bool = False
    backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"compile mode must be one of {MODES}, got {self.mode!r}")
        if self.mode is not None and self.backend != "inductor":
            raise ValueError(f"compile mode {self.mode!r} is an inductor mode; backend is {self.backend!r}")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`torch.compile`. With inductor, ``mode`` travels as the inductor settings it
        stands for, merged with :data:`INDUCTOR_OPTIONS` (``torch.compile`` takes a mode or settings, not both)."""
        kwargs = {k: v for k, v in asdict(self).items() if k != "mode"}
        if self.backend == "inductor":
            from torch._inductor import list_mode_options

            kwargs["options"] = {**list_mode_options(self.mode or "default", self.dynamic), **INDUCTOR_OPTIONS}
        return kwargs


def compile_options(setting: CompileSetting | CompileOptions) -> CompileOptions | None:
    """The ``compile`` option as :class:`CompileOptions`; ``None`` for ``False``/``None`` (eager).

    Raises:
        ValueError: an unknown key or value (the message lists the valid ones).
    """
    if isinstance(setting, CompileOptions):
        return setting
    if setting is None or setting is False:
        return None
    if setting is True:
        return CompileOptions()
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(CompileOptions.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown compile option(s) {unknown}; valid: "
                             f"{sorted(CompileOptions.__dataclass_fields__)}")
        return CompileOptions(**setting)
    raise ValueError(f"compile must be true, false or a mapping of torch.compile options, got {setting!r}")


#: Graphs dynamo keeps per compiled frame before falling back to eager. Its default (8) is too few for networks that
#: one iteration calls with several batch shapes and grad modes (DRIT's encoders: one-image content codes without
#: gradients, two-image batches with them, concatenated batches, evaluation), each of which is compiled once.
RECOMPILE_LIMIT = 32


def compile_networks(networks: Iterable[nn.Module], options: CompileOptions | None) -> None:
    """Compile each network in place with ``options`` (nothing when ``None``).

    Two process-wide settings come with it: dynamo's per-frame ``recompile_limit`` is raised to
    :data:`RECOMPILE_LIMIT` (never lowered), and AOTAutograd's donated buffers are turned off: a backward pass with
    ``retain_graph=True`` (SRUNIT's v1 regulariser, DRIT's updates) is refused by any compiled graph on its way that
    was compiled with donated buffers, even one it passes only once.
    """
    if options is None:
        return
    import torch._dynamo
    import torch._functorch.config

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    torch._functorch.config.donated_buffer = False
    for net in networks:
        net.compile(**options.kwargs())


def is_compiled(net: nn.Module) -> bool:
    """Whether ``net`` was compiled in place (its calls go through :func:`torch.compile`)."""
    return getattr(net, "_compiled_call_impl", None) is not None


def count_graph_breaks(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, list[str]]:
    """Graph breaks ``torch.compile`` would make in ``fn(*args, **kwargs)``, and their reasons (traced by
    :func:`torch._dynamo.explain`, nothing compiled)."""
    import torch._dynamo

    torch._dynamo.reset()
    explanation = torch._dynamo.explain(fn)(*args, **kwargs)
    torch._dynamo.reset()
    return explanation.graph_break_count, [str(b.reason) for b in explanation.break_reasons]


def reset() -> None:
    """Forget every compiled graph (tests that count compilations start from here)."""
    torch._dynamo.reset()
