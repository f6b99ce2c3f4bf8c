"""Compiled training speed with and without inductor's layout optimisation, interleaved in one process.

zoo compiles every network with ``zoo.compile.INDUCTOR_OPTIONS`` (``layout_optimization`` off), so compiled graphs keep
the memory format the method's ``channels_last`` option picked; inductor's default converts every graph with a
convolution to channels-last on the CPU. This prints, per method and layout, the median seconds per training
iteration of two copies of the same model (same weights, same inputs), one compiled each way, timed in alternation::

    python bench/compile_layout.py                                   # pix2pix, NCHW and channels-last
    python bench/compile_layout.py --methods cyclegan --layouts nchw --iterations 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from bench_methods import _setup  # noqa: E402
from machine import describe_machine  # noqa: E402

from zoo.compile import INDUCTOR_OPTIONS  # noqa: E402
from zoo.utils.memory import keep_freed_memory  # noqa: E402


def compiled_step(method: str, channels_last: bool, layout_optimization: bool, threads: int):
    """One training iteration of ``method`` at its paper settings, compiled as ``compile: true`` compiles it but with
    inductor's ``layout_optimization`` as given, as a callable; and the seconds the first call took."""
    torch.manual_seed(0)
    _, model, inputs = _setup(method, "cpu", channels_last, threads)
    optimizers, _ = model.configure_optimizers()
    with patch.dict(INDUCTOR_OPTIONS, layout_optimization=layout_optimization):  # read when the networks are compiled
        model.use_compile(True)

    def step() -> None:
        model.optimization_step(*inputs, *optimizers)

    start = time.perf_counter()
    step()  # compiles
    return step, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["pix2pix"])
    parser.add_argument("--layouts", nargs="+", choices=["nchw", "channels-last"], default=["nchw", "channels-last"])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    print(describe_machine())
    print(f"{'method':10s} {'layout':14s} {'zoo (off) s/it':>15s} {'inductor default (on)':>22s} {'zoo speed-up':>13s}"
          f" {'compile s (off / on)':>21s}")
    for method in args.methods:
        for layout in args.layouts:
            steps, compile_s = {}, {}
            for optimize in (False, True):
                steps[optimize], compile_s[optimize] = compiled_step(method, layout == "channels-last", optimize,
                                                                     args.threads)
                steps[optimize]()  # warm-up
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.iterations):  # interleaved, so machine noise hits both alike
                for optimize, step in steps.items():
                    start = time.perf_counter()
                    step()
                    times[optimize].append(time.perf_counter() - start)
            off, on = statistics.median(times[False]), statistics.median(times[True])
            print(f"{method:10s} {layout:14s} {off:15.3f} {on:22.3f} {on / off:12.2f}x"
                  f" {compile_s[False]:10.0f} / {compile_s[True]:.0f}", flush=True)


if __name__ == "__main__":
    main()
