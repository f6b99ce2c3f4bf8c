"""Speed of FID feature extraction on the CPU: zoo's :class:`~zoo.metrics.features.InceptionFeatures` against
pytorch-fid's ``InceptionV3([3])`` with the same weights, batch by batch.

Both get the same float images in [0, 1] (on the 8-bit grid, as images read from PNG files) and run under
``torch.no_grad()``; zoo's ``legacy-pytorch`` protocol is pytorch-fid's computation. The two alternate batch by
batch, the first of each pair swapping every batch, so that machine noise hits both alike. zoo's ``clean`` protocol
(clean-fid's PIL resize per channel) is timed in the same loop, with the share of its time spent resizing.

    python bench/fid_speed.py                      # 1,000 images of 256x256, batches of 50
    python bench/fid_speed.py --images 200         # a quick run
    python bench/fid_speed.py --weights pt_inception-2015-12-05-6726825d.pth

Without ``--weights`` both networks share one random state dict (the timings do not depend on the values).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="images per pipeline (default 1000)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--size", type=int, default=256, help="side of the square images (default 256)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    parser.add_argument("--weights", type=Path, default=None, help="pytorch-fid's Inception file (else random)")
    parser.add_argument("--no-clean", action="store_true", help="skip timing resize='clean'")
    args = parser.parse_args(argv)

    import torch
    from pytorch_fid import inception as pytorch_fid_inception

    from zoo.metrics.features import InceptionFeatures, resize_clean, to_uint8

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
    else:
        from zoo.nets.fid_inception import FIDInceptionV3
        from zoo.utils.random_weights import spread_random_state_dict

        state = spread_random_state_dict(FIDInceptionV3())
    pytorch_fid_inception.load_state_dict_from_url = lambda *a, **k: state  # no download: the same weights
    theirs = pytorch_fid_inception.InceptionV3([3]).eval()
    pipelines = {"zoo legacy-pytorch": InceptionFeatures(state, resize="legacy-pytorch"),
                 "pytorch-fid": lambda x: theirs(x)[0].flatten(1)}
    if not args.no_clean:
        pipelines["zoo clean"] = InceptionFeatures(state, resize="clean")

    print(f"machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, python {platform.python_version()}")
    print(f"weights: {args.weights or 'one random state dict shared by both networks'}")
    print(f"{args.images} images of {args.size}x{args.size}, batches of {args.batch_size}\n")

    generator = torch.Generator().manual_seed(0)
    seconds = dict.fromkeys(pipelines, 0.0)
    resize_seconds, max_relative, done = 0.0, 0.0, 0
    names = list(pipelines)
    with torch.no_grad():
        batch_index = 0
        while done < args.images:
            count = min(args.batch_size, args.images - done)
            pixels = torch.randint(0, 256, (count, 3, args.size // 8, args.size // 8), generator=generator)
            images = torch.nn.functional.interpolate(pixels.float(), size=(args.size, args.size), mode="bicubic")
            images = to_uint8(images.clamp(0, 255) / 255).float() / 255  # smooth, on the 8-bit grid
            order = names if batch_index % 2 == 0 else [names[1], names[0], *names[2:]]
            features = {}
            for name in order:
                start = time.perf_counter()
                features[name] = pipelines[name](images)
                seconds[name] += time.perf_counter() - start
            if "zoo clean" in pipelines:
                start = time.perf_counter()
                resize_clean(to_uint8(images))
                resize_seconds += time.perf_counter() - start
            reference = features["pytorch-fid"]
            difference = (features["zoo legacy-pytorch"] - reference).abs().max() / reference.abs().max()
            max_relative = max(max_relative, float(difference))
            done += count
            batch_index += 1

    for name in names:
        print(f"{name:>20}: {done / seconds[name]:7.2f} images/s ({seconds[name]:.1f} s)")
    ratio = seconds["pytorch-fid"] / seconds["zoo legacy-pytorch"]
    print(f"\nzoo legacy-pytorch / pytorch-fid speed: {ratio:.3f}x (> 1: zoo is faster)")
    print(f"max |feature difference| / max |feature|: {max_relative:.2e}")
    if "zoo clean" in pipelines:
        share = resize_seconds / seconds["zoo clean"]
        print(f"resize_clean alone: {done / resize_seconds:.1f} images/s, about {share:.0%} of zoo clean's time")


if __name__ == "__main__":
    main()
