"""Training and inference speed and peak memory of every registered method at its paper settings.

Each method runs in its own subprocess so that peak memory (max RSS on CPU, max allocated on CUDA)
belongs to that method alone. Prints one row per method:

    python bench/bench_methods.py                       # every method, CPU, 2 threads, fp32
    python bench/bench_methods.py --methods cyclegan --iterations 5
    python bench/bench_methods.py --device cuda --precision bf16
    python bench/bench_methods.py --methods pix2pix cyclegan --reference   # vs the official loop
    python bench/bench_methods.py --methods decent --default-malloc   # without zoo's heap setting (see below)

Like ``zoo fit`` (:class:`zoo.trainer.ZooTrainer`) and ``zoo translate``, each run first calls
:func:`zoo.utils.memory.keep_freed_memory`; ``--default-malloc`` measures without it.

Compare ratios taken in the same run: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

#: Paper settings per method: constructor overrides, image size (H, W), batch size.
PAPER_SETTINGS: dict[str, dict] = {
    "pix2pix": {"init_args": {}, "size": (256, 256), "batch_size": 1},
    "cyclegan": {"init_args": {}, "size": (256, 256), "batch_size": 1},
    "vsait": {"init_args": {"feature_weights": None}, "size": (256, 256), "batch_size": 1},  # random VGG: same time
    # SR: size is the LR side (24 -> 96x96 HR crops, x4); random VGG19 weights time the same as ImageNet's
    "srresnet": {"init_args": {}, "size": (24, 24), "batch_size": 16},
    # detach_content: the port's detached VGG loss, as in the official timing below (like for like)
    "srgan": {"init_args": {"vgg_weights": None, "detach_content": True}, "size": (24, 24), "batch_size": 16},
    "munit": {"init_args": {}, "size": (256, 256), "batch_size": 1},  # edges2shoes (vgg_w 0)
    "decent": {"init_args": {}, "size": (256, 256), "batch_size": 1},  # horse2zebra defaults (BNAF)
    "drit": {"init_args": {}, "size": (216, 216), "batch_size": 2},  # official defaults (concat 1, mode seeking)
    "lomit": {"init_args": {}, "size": (128, 128), "batch_size": 8},  # CelebA; time >= 5 iterations (n_critic 5)
}

#: The official implementations measured on a 2-core CPU machine like CI's at the settings above (fp32, 2 threads):
#: seconds per training iteration (averaged over the official schedule), seconds per inference call, peak GB.
#: Printed next to zoo's numbers when running on CPU; they were measured on another day, so treat small
#: differences as noise and compare with ``--reference`` (same run) where an official loop is available.
OFFICIAL_SECONDS: dict[str, dict[str, float]] = {
    "vsait": {"train": 13.3, "infer": 0.49, "peak_gb": 4.4},
    # Lornatang/SRGAN-PyTorch, its content loss detached (no VGG backward; 4-14% more with the VGG gradient, as zoo)
    "srgan": {"train": 3.6, "infer": 0.26},
    "munit": {"train": 10.8, "infer": 0.65},  # NVlabs/MUNIT train.py iteration / test.py call, edges2shoes config
    "decent": {"train": 6.0, "infer": 0.66, "peak_gb": 3.3},  # Mid-Push/Decent optimize_parameters / netG call
    # HsinYingLee/DRIT train.py, default options (concat 1, mode seeking): 4.2 s averaged over the d_iter=3 schedule
    # (0.4 s content-discriminator-only iterations, 11-12 s full ones); the bench times full iterations, so it
    # compares with 11.5 s; test.py call 0.66 s
    "drit": {"train": 11.5, "infer": 0.66},
    # authors' run.py loop, CelebA config: 13 s averaged over the N_CRITIC=5 schedule (8.2 s D-only, 31-37 s with the
    # G step), 1.8 s per G(x, exemplar) call, 9.9 GB peak
    "lomit": {"train": 13.0, "infer": 1.8, "peak_gb": 9.9},
}


def _batch(model, size, batch_size, device):
    """``model.example_inputs`` on ``device``: the tensors ``optimization_step`` takes before the optimizers."""
    import torch

    inputs = model.example_inputs(batch_size, size, generator=torch.Generator().manual_seed(0))
    return tuple(x.to(device) for x in inputs)


def run_one(method: str, iterations: int, warmup: int, device: str, precision: str, channels_last: bool,
            threads: int, with_reference: bool = False, keep_freed_memory: bool = True) -> dict:
    import torch

    import zoo
    from zoo.utils.memory import keep_freed_memory as keep_heap

    torch.set_num_threads(threads)
    if keep_freed_memory:
        keep_heap()
    settings = PAPER_SETTINGS.get(method, {"init_args": {}, "size": (256, 256), "batch_size": 1})
    init_args = dict(settings["init_args"])
    if not channels_last:
        init_args["channels_last"] = False
    model = zoo.create(method, **init_args).to(device)
    model.setup("fit")  # what the Trainer does first: e.g. the channels-last conversion
    channels_last = bool(getattr(model.hparams, "channels_last", False))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    optimizers, _ = model.configure_optimizers()
    inputs = tuple(x.contiguous(memory_format=memory_format) if x.dim() == 4 else x
                   for x in _batch(model, settings["size"], settings["batch_size"], device))
    real_a, real_b = inputs[0], inputs[1]
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def step():
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            model.optimization_step(*inputs, *optimizers)

    reference = None
    if with_reference:
        from official_loops import OFFICIAL_LOOPS

        if method in OFFICIAL_LOOPS:
            reference = OFFICIAL_LOOPS[method](model)
            ref_a, ref_b = real_a.contiguous(), real_b.contiguous()

    def timed(fn) -> float:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    for _ in range(warmup):
        step()
        if reference is not None:
            reference.step(ref_a, ref_b)
    zoo_times, ref_times = [], []
    for _ in range(iterations):  # interleaved, so machine noise hits both alike
        zoo_times.append(timed(step))
        if reference is not None:
            ref_times.append(timed(lambda: reference.step(ref_a, ref_b)))
    train_s = sum(zoo_times) / iterations
    ref_s = sum(ref_times) / iterations if ref_times else None

    images = (real_a[:1] + 1) / 2
    extra = {"exemplar": images} if getattr(model, "requires_exemplar", False) else {}
    for _ in range(warmup):
        model.translate(images, **extra)
    sync()
    start = time.perf_counter()
    for _ in range(iterations):
        model.translate(images, **extra)
    sync()
    infer_s = (time.perf_counter() - start) / iterations
    ref_infer_s = None
    if reference is not None:
        ref_infer_s = sum(timed(lambda: reference.infer(ref_a[:1])) for _ in range(iterations)) / iterations

    if device.startswith("cuda"):
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    h, w = settings["size"]
    return {"method": method, "size": f"{h}x{w}", "batch": settings["batch_size"], "train_s_per_it": train_s,
            "train_it_per_s": 1 / train_s, "infer_s_per_call": infer_s, "infer_img_per_s": 1 / infer_s,
            "peak_memory_gb": peak_gb, "device": device, "precision": precision, "threads": threads,
            "official_loop_s_per_it": ref_s, "official_infer_s_per_call": ref_infer_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--contiguous", action="store_true", help="train in NCHW instead of each method's default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true",
                        help="also time a re-creation of the official training loop (bench/official_loops.py), "
                             "interleaved with zoo's, and print the speed ratio")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc settings alone (zoo fit and zoo translate keep freed memory)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method in this process
    args = parser.parse_args()

    if args.one:
        result = run_one(args.one, args.iterations, args.warmup, args.device, args.precision, not args.contiguous,
                         args.threads, args.reference, not args.default_malloc)
        print("RESULT " + json.dumps(result))
        return

    import zoo
    from zoo.registry import get_method

    methods = args.methods or [m for m in zoo.list_models() if getattr(get_method(m), "trainable", True)]
    print(f"{'method':10s} {'size':>8s} {'batch':>5s} {'train s/it':>11s} {'it/s':>7s} {'infer s':>8s} "
          f"{'img/s':>7s} {'peak GB':>8s}")
    for method in methods:
        cmd = [sys.executable, __file__, "--one", method, "--iterations", str(args.iterations), "--warmup",
               str(args.warmup), "--device", args.device, "--precision", args.precision, "--threads",
               str(args.threads)] + (["--contiguous"] if args.contiguous else []) + (
                   ["--default-malloc"] if args.default_malloc else []) + (
                   ["--reference"] if args.reference else [])
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"{method:10s} failed:\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(line[len("RESULT "):])
        print(f"{r['method']:10s} {r['size']:>8s} {r['batch']:>5d} {r['train_s_per_it']:>11.3f} "
              f"{r['train_it_per_s']:>7.2f} {r['infer_s_per_call']:>8.3f} {r['infer_img_per_s']:>7.2f} "
              f"{r['peak_memory_gb']:>8.2f}" + (
                  f"   official loop {r['official_loop_s_per_it']:.3f} s/it, zoo is "
                  f"{r['official_loop_s_per_it'] / r['train_s_per_it']:.2f}x as fast; official inference "
                  f"{r['official_infer_s_per_call']:.3f} s/call, zoo "
                  f"{r['official_infer_s_per_call'] / r['infer_s_per_call']:.2f}x as fast"
                  if r.get("official_loop_s_per_it") else "") + _official_note(r))


def _official_note(result: dict) -> str:
    """zoo's speed relative to the official implementation's measured numbers (CPU fp32 only)."""
    official = OFFICIAL_SECONDS.get(result["method"])
    if not official or result["device"] != "cpu" or result["precision"] != "fp32":
        return ""
    note = (f"   official {official['train']:.2f} s/it (zoo {official['train'] / result['train_s_per_it']:.2f}x as "
            f"fast), {official['infer']:.2f} s/call (zoo {official['infer'] / result['infer_s_per_call']:.2f}x)")
    if "peak_gb" in official:
        note += f", {official['peak_gb']:.1f} GB peak (zoo {result['peak_memory_gb']:.1f} GB)"
    return note


if __name__ == "__main__":
    main()
