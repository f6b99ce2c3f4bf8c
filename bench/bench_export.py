"""Eager PyTorch (``model.translate``) against onnxruntime (``zoo.export.load_onnx_model(...).translate``) on the same
inputs, at paper widths and a realistic size:

    python bench/bench_export.py                          # cyclegan, srgan, vsait; 256x256 outputs; 2 threads
    python bench/bench_export.py --methods cyclegan --repeats 20 --threads 4

Each model is exported once (static shapes, verified against eager within 1e-4), then the two runtimes alternate
(eager, onnxruntime, eager, ...) so machine noise hits both alike; each prints ms/image as the median over the
repetitions, and the ratio eager / onnxruntime (above 1: onnxruntime is faster) as the median of the per-round
ratios. Both sides get the same number of threads. Compare ratios taken in the same run: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import describe_machine

#: constructor overrides per method: the paper widths (random weights time the same as trained ones)
SETTINGS: dict[str, dict] = {
    "cyclegan": {},
    "srgan": {"vgg_weights": None},
    "vsait": {"feature_weights": None},
    "pix2pix": {"inference_mode": "eval"},
    "munit": {},
}


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _tame_output(model: torch.nn.Module, images: torch.Tensor) -> None:
    """Scale the last convolution of an upscaler so that its random-weight output lies in the image range.

    A randomly initialised SRResNet (16 residual blocks, no normalisation) outputs values around 1e4: float32 rounding
    alone then differs by more than 1e-4 between any two runtimes, and the clamped output is a flat image. The last
    convolution is linear, so scaling its weight and bias scales the output; trained weights need no such step.
    """
    net = model.generator_for("a2b")
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        spread = float(net(images).std())
        last.weight.mul_(0.5 / spread)
        if last.bias is not None:
            last.bias.mul_(0.5 / spread)


def bench(name: str, out_side: int, repeats: int, threads: int, folder: Path) -> dict[str, float | str]:
    """ms/image of eager translate and of the ONNX translator for ``name``, outputs ``out_side`` square, batch 1."""
    import zoo
    from zoo.export import export_model, load_onnx_model

    torch.manual_seed(0)
    model = zoo.create(name, **SETTINGS.get(name, {})).eval()
    side = out_side // model.scale
    if model.scale > 1 and name != "bicubic":
        _tame_output(model, model.example_images(1, side, generator=torch.Generator().manual_seed(1)))
    report = export_model(model, folder / f"{name}.onnx", format="onnx", example_size=side)
    translator = load_onnx_model(report.path, threads=threads)
    images = model.example_images(1, side, generator=torch.Generator().manual_seed(0))
    conditions = {"seed": 0} if model.style_dim else {}
    if model.requires_exemplar:
        conditions["exemplar"] = images
    for _ in range(2):  # warm-up: allocator, oneDNN primitives, onnxruntime's arena
        model.translate(images, **conditions)
        translator.translate(images, **conditions)
    eager, onnx = [], []
    for _ in range(repeats):
        eager.append(_time(lambda: model.translate(images, **conditions)))
        onnx.append(_time(lambda: translator.translate(images, **conditions)))
    return {"method": name, "size": f"{side}->{side * model.scale}", "eager_ms": 1000 * statistics.median(eager),
            "onnx_ms": 1000 * statistics.median(onnx),
            "ratio": statistics.median(e / o for e, o in zip(eager, onnx, strict=True)),
            "verify": report.max_abs_diff}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["cyclegan", "srgan", "vsait"])
    parser.add_argument("--size", type=int, default=256, help="output side (SR inputs are size / scale; default 256)")
    parser.add_argument("--repeats", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--threads", type=int, default=2, help="threads of both runtimes (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import onnxruntime

    print(f"machine: {describe_machine(f'onnxruntime {onnxruntime.__version__}')}", flush=True)
    print(f"{'method':10s} {'size':>10s} {'eager ms/img':>13s} {'onnxrt ms/img':>14s} {'eager/onnxrt':>13s} "
          f"{'verify diff':>12s}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.methods:
            r = bench(name, args.size, args.repeats, args.threads, Path(folder))
            print(f"{r['method']:10s} {r['size']:>10s} {r['eager_ms']:>13.1f} {r['onnx_ms']:>14.1f} "
                  f"{r['ratio']:>12.2f}x {r['verify']:>12.2g}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
