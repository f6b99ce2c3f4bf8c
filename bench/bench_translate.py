"""Dataset translation speed and memory: ``zoo translate`` against a plain loop over the same images.

The plain loop is what a user writes first: for each file, load it, ``model.translate`` it, save it, one by one.
``zoo translate`` (:func:`zoo.translate.translate_images`) decodes in DataLoader workers, batches, and encodes in
writer threads. Both run the same model (paper widths, random weights) on the same synthetic images, interleaved
(plain, zoo, plain, zoo, ...) because the machine is noisy; the ratio is taken per round and its median printed, with
the share of wall time spent outside the model.

The memory check translates a small and a large set (``--memory-images``, 2,000 by default) in fresh processes and
prints each one's peak resident memory: bounded by the batch, the two agree.

    python bench/bench_translate.py           # CycleGAN and VSAIT at 512x1024, SRGAN and bicubic x4 on 128x128
    python bench/bench_translate.py --methods srgan --rounds 3 --images 24
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine
from PIL import Image

#: method -> (input height, input width) of the speed runs; bicubic x4 (no network) is the case where decoding and
#: encoding dominate
SIZES = {"cyclegan": (512, 1024), "vsait": (512, 1024), "srgan": (128, 128), "bicubic": (128, 128)}


def _write_images(folder: Path, count: int, height: int, width: int) -> None:
    """Smooth random pictures (upsampled noise plus fine grain), so PNG sizes and decode times are photo-like."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
        image = np.clip(image + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:05d}.png")


def _plain_loop(model: torch.nn.Module, folder: Path, output: Path) -> tuple[float, float]:
    """Load -> translate -> save, one image at a time. Returns (seconds, seconds inside the model)."""
    from zoo.data.io import read_image, save_image

    output.mkdir(parents=True, exist_ok=True)
    start, inside = time.perf_counter(), 0.0
    for path in sorted(folder.glob("*.png")):
        image = read_image(path)[None]
        began = time.perf_counter()
        result = model.translate(image)
        inside += time.perf_counter() - began
        save_image(result[0], output / path.name)
    return time.perf_counter() - start, inside


def _zoo(model: torch.nn.Module, folder: Path, output: Path, batch_size: int) -> tuple[float, float]:
    from zoo.translate import translate_images

    report = translate_images(model, folder, output, device="cpu", progress=False, batch_size=batch_size,
                              overwrite=True)
    return report.seconds, report.model_seconds


def _speed(name: str, count: int, rounds: int, batch_size: int, work: Path) -> None:
    import zoo

    torch.manual_seed(0)
    model = zoo.create(name).eval()
    height, width = SIZES[name]
    folder = work / f"{name}-in"
    _write_images(folder, count, height, width)
    _plain_loop(model, folder, work / "warm")  # first-call costs (allocator, oneDNN primitives) out of the rounds
    ratios, plain_outside, zoo_outside, plain_rate, zoo_rate = [], [], [], [], []
    for _ in range(rounds):
        seconds, inside = _plain_loop(model, folder, work / f"{name}-plain")
        plain_rate.append(count / seconds)
        plain_outside.append(1 - inside / seconds)
        seconds_zoo, inside_zoo = _zoo(model, folder, work / f"{name}-zoo", batch_size)
        zoo_rate.append(count / seconds_zoo)
        zoo_outside.append(1 - inside_zoo / seconds_zoo)
        ratios.append(seconds / seconds_zoo)
    print(f"{name:9s} {height}x{width} x{count}: plain {statistics.median(plain_rate):.3f} images/s "
          f"({100 * statistics.median(plain_outside):.1f}% outside the model), zoo translate "
          f"{statistics.median(zoo_rate):.3f} images/s ({100 * statistics.median(zoo_outside):.1f}% outside), "
          f"zoo/plain {statistics.median(ratios):.2f}x (rounds: {', '.join(f'{r:.2f}' for r in ratios)})",
          flush=True)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_memory_child(folder: str, output: str, batch_size: int) -> None:
    """Run in a fresh process: translate ``folder`` with a small CycleGAN and print the peak RSS in MB as JSON."""
    import zoo
    from zoo.translate import translate_images

    torch.manual_seed(0)
    model = zoo.create("cyclegan", ngf=16).eval()
    report = translate_images(model, folder, output, device="cpu", progress=False, batch_size=batch_size)
    peak = _peak_rss_mb()  # not getrusage: its maxrss keeps the launching process's peak across exec
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"images": report.frames, "peak_mb": peak, "worker_peak_mb": workers,
                      "images_per_second": report.images_per_second}))


def _memory(counts: list[int], batch_size: int, work: Path) -> None:
    for count in counts:
        folder = work / f"memory-{count}"
        _write_images(folder, count, 128, 128)
        result = subprocess.run([sys.executable, __file__, "--memory-child", str(folder), str(work / f"out-{count}"),
                                 str(batch_size)], capture_output=True, text=True, check=True)
        record = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"memory: {record['images']} images of 128x128, batch {batch_size}: peak RSS "
              f"{record['peak_mb']:.0f} MB (main process), {record['worker_peak_mb']:.0f} MB (largest worker); "
              f"{record['images_per_second']:.1f} images/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--images", type=int, default=8, help="images per speed run (default: 8)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved plain/zoo rounds (default: 2)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--memory-images", type=int, nargs="+", default=[200, 2000],
                        help="set sizes of the memory check (default: 200 2000; none: skip)")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        folder, output, batch_size = args.memory_child
        _peak_memory_child(folder, output, int(batch_size))
        return
    print(f"machine: {describe_machine()}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for name in args.methods:
            count = args.images * {"srgan": 4, "bicubic": 32}.get(name, 1)
            _speed(name, count, args.rounds, args.batch_size, Path(work))
        if args.memory_images:
            _memory(args.memory_images, args.batch_size, Path(work))


if __name__ == "__main__":
    main()
