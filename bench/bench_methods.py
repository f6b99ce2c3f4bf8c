"""Training and inference speed and peak memory of every registered method at its paper settings.

Each method runs in its own subprocess so that peak memory (max RSS on CPU, max allocated on CUDA)
belongs to that method alone. Prints one row per method:

    python bench/bench_methods.py                       # every method, CPU, 2 threads, fp32
    python bench/bench_methods.py --methods cyclegan --iterations 5
    python bench/bench_methods.py --device cuda --precision bf16
    python bench/bench_methods.py --methods pix2pix --compile --reference   # torch.compile (inductor) vs official
    python bench/bench_methods.py --device cuda --precision bf16-mixed --compile --reference   # bench/gpu_check.sh
    python bench/bench_methods.py --methods pix2pix cyclegan --reference   # vs the official loop
    python bench/bench_methods.py --methods lomit --iterations 5 --reference
    python bench/bench_methods.py --methods cut srunit --iterations 1 --warmup 0 --reference
    python bench/bench_methods.py --methods decent --default-malloc   # without zoo's heap setting (see below)
    python bench/bench_methods.py --methods pix2pixhd pix2pixhd_local --device cuda --reference
    python bench/bench_methods.py --methods instaformer --iterations 2 --reference

A method with two paper settings has a second entry in ``PAPER_SETTINGS`` whose ``method`` names the registered
method (``pix2pixhd_local``: pix2pixHD's local enhancer); ``--methods`` takes either name, and the default list holds
every registered method followed by its further settings.

Like ``zoo fit`` (:class:`zoo.trainer.ZooTrainer`) and ``zoo translate``, each run first calls
:func:`zoo.utils.memory.keep_freed_memory`; ``--default-malloc`` measures without it.

With ``--reference``, a re-creation of the official training loop (``bench/official_loops.py``) runs interleaved
with zoo's in the same process, for the speed ratios; the peak memory of each side then comes from a run of that
side alone, in its own process (the re-creation with glibc's default malloc, as the authors' code runs). Where
``official_loops.OFFICIAL_CHECKS`` has a check for the method (pix2pixHD, InstaFormer), an fp32 ``--reference`` run
first takes one step of each side on the same weights and inputs (InstaFormer: zoo's step replays the official loop's
random draws), fails unless their losses agree within 1e-4 (relative), and prints them.

With ``--compile`` every network is compiled (the methods' ``compile: true``); the first warm-up iteration, which
compiles, is reported separately as ``compile s`` and is not in the averages. On CUDA the model FLOPs of one
training iteration (counted by :class:`torch.utils.flop_counter.FlopCounterMode`, eager) divided by the measured
time and the device's dense bf16 peak give the model FLOP utilisation (``MFU``); ``--peak-tflops`` overrides the
peak looked up from the device name.

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

#: Paper settings per method: constructor overrides, image size (H, W), batch size (and inference batch, default 1).
#: A key other than a method name runs the registered method named by ``method``. ``infer_extra`` maps ``translate``
#: keywords to the position of their tensor in ``example_inputs`` (aligned inputs such as instance maps).
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
    "cut": {"init_args": {"mode": "cut"}, "size": (256, 256), "batch_size": 1},  # CUT mode (nce_idt), horse2zebra
    # GTA -> Cityscapes defaults (CUT mode, reg 0.001, v2); inact_epochs 0 times the full iteration with the
    # regulariser on, on both sides (officially the first 100 epochs train D only)
    "srunit": {"init_args": {"inact_epochs": 0}, "size": (256, 256), "batch_size": 1},
    "drit": {"init_args": {}, "size": (216, 216), "batch_size": 2},  # official defaults (concat 1, mode seeking)
    # CelebA; the iterations timed are rounded up to whole n_critic cycles (G every 5th iteration)
    # inference as the authors' test loop: batches of 8 inputs with 8 exemplars
    "lomit": {"init_args": {}, "size": (128, 128), "batch_size": 8, "infer_batch": 8},
    # Cityscapes at 512x256 (W x H), global generator, default widths (ngf 64, 4 downsamplings, 9 blocks; ndf 64,
    # num_D 2, n_layers_D 3); random VGG19 weights time the same as ImageNet's
    "pix2pixhd": {"init_args": {"label_nc": 35, "generator": "global", "vgg_weights": None}, "size": (256, 512),
                  "batch_size": 1, "infer_extra": {"instance": 2}},
    # the official 2048x1024 recipe's networks (local enhancer: ngf 32, 1 enhancer with 3 blocks, num_D 3) at half
    # that resolution, 1024x512 (W x H)
    "pix2pixhd_local": {"method": "pix2pixhd", "init_args": {
        "label_nc": 35, "generator": "local", "ngf": 32, "num_d": 3, "n_local_enhancers": 1, "n_blocks_local": 3,
        "vgg_weights": None}, "size": (512, 1024), "batch_size": 1, "infer_extra": {"instance": 2}},
    # INIT at 352x352 (img_size 88), the official widths (zoo's defaults: ngf 64, embed_C 1024, depth 6, mlp_dim 4096)
    # and num_box 20; example_inputs gives 1-2 valid boxes per image (the instance branch runs on both sides);
    # inference as translate without boxes (random style)
    "instaformer": {"init_args": {"num_box": 20}, "size": (352, 352), "batch_size": 1},
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


def _settings(name: str) -> dict:
    """The paper settings of ``name`` (a method or a further setting of one), defaults where none are listed."""
    return PAPER_SETTINGS.get(name, {"init_args": {}, "size": (256, 256), "batch_size": 1})


def _method_of(name: str) -> str:
    """The registered method a ``PAPER_SETTINGS`` key runs."""
    return _settings(name).get("method", name)


def _batch(model, size, batch_size, device):
    """``model.example_inputs`` on ``device``: the tensors ``optimization_step`` takes before the optimizers."""
    import torch

    inputs = model.example_inputs(batch_size, size, generator=torch.Generator().manual_seed(0))
    return tuple(None if x is None else x.to(device) for x in inputs)


def _peak_gb(device: str) -> float:
    """Peak memory so far: max RSS on CPU, max allocated on CUDA."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _timed(fn, device: str) -> float:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def _setup(method: str, device: str, channels_last: bool | None, threads: int, size: tuple[int, int] | None = None):
    """(paper settings, zoo's model in train mode, its batch in the model's memory format); ``channels_last``
    overrides the method's default layout (None keeps it), ``size`` the settings' image size (H, W)."""
    import torch

    import zoo

    torch.set_num_threads(threads)
    settings = dict(_settings(method))
    if size is not None:
        settings["size"] = tuple(size)
    init_args = dict(settings["init_args"])
    if channels_last is not None:
        init_args["channels_last"] = channels_last
    model = zoo.create(_method_of(method), **init_args).to(device)
    model.setup("fit")  # what the Trainer does first: e.g. the channels-last conversion
    model.train()
    return settings, model, model.in_training_layout(_batch(model, settings["size"], settings["batch_size"], device))


#: Dense bf16 tensor-core peaks (TFLOP/s) by a substring of ``torch.cuda.get_device_name()``, for MFU.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0,
                    "L4": 121.0, "RTX 4090": 165.0, "V100": 125.0}

PRECISIONS = {"fp32": None, "bf16": "bf16", "bf16-mixed": "bf16", "fp16": "fp16", "16-mixed": "fp16"}


def _peak_tflops(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in name), None)


def _iteration_flops(step) -> float:
    """Model FLOPs of one training iteration (forward and backward of every network), counted eagerly."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def _whole_cycles(model, iterations: int) -> int:
    """Methods that alternate kinds of iterations (``model.schedule_cycle``, e.g. LOMIT's G step every ``n_critic``)
    are timed over whole cycles: any ``schedule_cycle`` consecutive iterations hold each kind once."""
    cycle = model.schedule_cycle
    return -(-iterations // cycle) * cycle


def _official_inputs(reference, inputs: tuple) -> tuple:
    """The official loop's inputs, NCHW: ``reference.official_inputs`` (the official data format, e.g. pix2pixHD's
    label ids) where the loop has one, else zoo's inputs."""
    convert = getattr(reference, "official_inputs", None)
    if convert is not None:
        return tuple(convert(*inputs))
    return tuple(x.contiguous() for x in inputs)  # the official code runs NCHW


def _official_infer_inputs(settings: dict, model, inputs: tuple, reference=None) -> list:
    """The official inference call's arguments: the inference batch of the first ``reference.INFER_INPUTS``
    official inputs, else of the images (and of the exemplars)."""
    count = getattr(reference, "INFER_INPUTS", None) or (2 if getattr(model, "requires_exemplar", False) else 1)
    return [x[:settings.get("infer_batch", 1)] for x in inputs[:count]]


def _zoo_infer_extra(settings: dict, inputs: tuple, infer_batch: int) -> dict:
    """``translate`` keywords of the aligned inputs (``infer_extra``), at the inference batch."""
    return {key: inputs[index][:infer_batch] for key, index in settings.get("infer_extra", {}).items()
            if inputs[index] is not None}


def run_one(method: str, iterations: int, warmup: int, device: str, precision: str, channels_last: bool | None,
            threads: int, with_reference: bool = False, keep_freed_memory: bool = True,
            size: tuple[int, int] | None = None, compile: bool = False, peak_tflops: float | None = None) -> dict:
    """zoo's training and inference times and the process's peak memory; with ``with_reference``, also the official
    loop's times, interleaved with zoo's."""
    import torch

    from zoo.utils.memory import keep_freed_memory as keep_heap

    if keep_freed_memory:
        keep_heap()
    settings, model, inputs = _setup(method, device, channels_last, threads, size)
    optimizers, _ = model.configure_optimizers()
    dtype = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}[PRECISIONS[precision]]

    def step():
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            model.optimization_step(*inputs, *optimizers)

    iterations = _whole_cycles(model, iterations)
    infer_batch = settings.get("infer_batch", 1)
    with_exemplar = getattr(model, "requires_exemplar", False)
    images = (inputs[0][:infer_batch] + 1) / 2
    extra = {"exemplar": (inputs[1][:infer_batch] + 1) / 2} if with_exemplar else {}
    extra.update(_zoo_infer_extra(settings, inputs, infer_batch))
    loss_check = None
    if with_reference and dtype is None:
        from official_loops import OFFICIAL_CHECKS

        if _method_of(method) in OFFICIAL_CHECKS:  # same weights, same inputs: the losses of one step must agree
            loss_check = OFFICIAL_CHECKS[_method_of(method)](model, inputs, optimizers)
    flops = _iteration_flops(step) if device.startswith("cuda") else None  # eager, before compiling
    compile_s = None
    if compile:
        model.use_compile(True)
        compile_s = _timed(step, device)  # the first call compiles every graph of the iteration
    for _ in range(warmup):  # iteration 0 is also a G iteration of an n_critic schedule: the heaviest kind
        step()
        model.translate(images, **extra)

    reference = None
    if with_reference:
        from official_loops import OFFICIAL_LOOPS

        if _method_of(method) in OFFICIAL_LOOPS:
            reference = OFFICIAL_LOOPS[_method_of(method)](model)
            ref_inputs = _official_inputs(reference, inputs)
            ref_infer_inputs = _official_infer_inputs(settings, model, ref_inputs, reference)
            for _ in range(warmup):
                reference.step(*ref_inputs)
                reference.infer(*ref_infer_inputs)
    zoo_times, ref_times = [], []
    for _ in range(iterations):  # interleaved, so machine noise hits both alike
        zoo_times.append(_timed(step, device))
        if reference is not None:
            ref_times.append(_timed(lambda: reference.step(*ref_inputs), device))
    zoo_infer, ref_infer = [], []
    for _ in range(iterations):
        zoo_infer.append(_timed(lambda: model.translate(images, **extra), device))
        if reference is not None:
            ref_infer.append(_timed(lambda: reference.infer(*ref_infer_inputs), device))

    train_s, infer_s = sum(zoo_times) / iterations, sum(zoo_infer) / iterations
    h, w = settings["size"]
    return {"method": method, "size": f"{h}x{w}", "batch": settings["batch_size"], "train_s_per_it": train_s,
            "train_it_per_s": 1 / train_s, "infer_s_per_call": infer_s, "infer_batch": infer_batch,
            "infer_img_per_s": infer_batch / infer_s,
            "peak_memory_gb": _peak_gb(device),
            "device": device, "precision": precision, "threads": threads,
            "official_loop_s_per_it": sum(ref_times) / iterations if ref_times else None,
            "official_infer_s_per_call": sum(ref_infer) / iterations if ref_infer else None,
            "compiled": compile, "compile_s": compile_s, "iteration_tflop": flops / 1e12 if flops else None,
            "mfu": (flops / train_s / 1e12 / peak) if flops and (peak := peak_tflops or _peak_tflops(device)) else None,
            "schedule_cycle": model.schedule_cycle, "train_s_each": zoo_times,
            "official_loop_s_each": ref_times or None, "loss_check": loss_check}


def run_official_alone(method: str, iterations: int, warmup: int, device: str, threads: int,
                       size: tuple[int, int] | None = None) -> dict:
    """Peak memory of the official loop re-creation alone (fp32, NCHW, glibc's default malloc as in the authors'
    code), after ``warmup`` + ``iterations`` (whole cycles) training iterations and inference calls."""
    import gc

    from official_loops import OFFICIAL_LOOPS

    settings, model, inputs = _setup(method, device, False, threads, size)
    reference = OFFICIAL_LOOPS[_method_of(method)](model)
    inputs = _official_inputs(reference, inputs)
    infer_inputs = _official_infer_inputs(settings, model, inputs, reference)
    iterations = _whole_cycles(model, iterations)
    del model  # the re-creation holds its own copies of the networks
    gc.collect()
    for _ in range(warmup + iterations):
        reference.step(*inputs)
        reference.infer(*infer_inputs)
    return {"method": method, "official_peak_memory_gb": _peak_gb(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="*", default=None,
                        help="methods or PAPER_SETTINGS keys (default: every registered method and its further "
                             "settings)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="override the paper image size (smoke tests)")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                        help="autocast dtype of zoo's side (the official loops run fp32 eager, as their authors)")
    parser.add_argument("--compile", action="store_true", help="torch.compile every network of zoo's side")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU (default: by name)")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--contiguous", action="store_true", help="train in NCHW instead of each method's default")
    layout.add_argument("--channels-last", action="store_true",
                        help="train channels-last instead of each method's default ('auto': NCHW on the CPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true",
                        help="also time a re-creation of the official training loop (bench/official_loops.py), "
                             "interleaved with zoo's, and print the speed ratio")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc settings alone (zoo fit and zoo translate keep freed memory)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one method in this process
    parser.add_argument("--official-alone", action="store_true", help=argparse.SUPPRESS)  # internal, with --one
    args = parser.parse_args()

    if args.one:
        if args.official_alone:
            result = run_official_alone(args.one, args.iterations, args.warmup, args.device, args.threads, args.size)
        else:
            layout = False if args.contiguous else True if args.channels_last else None
            result = run_one(args.one, args.iterations, args.warmup, args.device, args.precision, layout,
                             args.threads, args.reference, not args.default_malloc, args.size, args.compile,
                             args.peak_tflops)
        print("RESULT " + json.dumps(result))
        return

    from official_loops import OFFICIAL_LOOPS

    import zoo
    from zoo.registry import get_method

    registered = [m for m in zoo.list_models() if getattr(get_method(m), "trainable", True)]
    methods = args.methods or [name for m in registered for name in
                               [m, *(k for k, v in PAPER_SETTINGS.items() if v.get("method") == m and k != m)]]
    print(f"{'method':15s} {'size':>8s} {'batch':>5s} {'train s/it':>11s} {'it/s':>7s} {'infer s':>8s} "
          f"{'img/s':>7s} {'peak GB':>8s}")
    for method in methods:
        cmd = [sys.executable, __file__, "--one", method, "--iterations", str(args.iterations), "--warmup",
               str(args.warmup), "--device", args.device] + (["--size", *map(str, args.size)] if args.size else []) + [
               "--precision", args.precision, "--threads",
               str(args.threads)] + (["--contiguous"] if args.contiguous else []) + (
                   ["--channels-last"] if args.channels_last else []) + (
                   ["--default-malloc"] if args.default_malloc else []) + (
                   ["--reference"] if args.reference else []) + (["--compile"] if args.compile else []) + (
                   ["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else [])
        r = _run_subprocess(cmd, args.threads)
        if isinstance(r, str):
            print(f"{method:15s} failed:\n{r}")
            continue
        if args.reference and _method_of(method) in OFFICIAL_LOOPS:
            # peaks of each side alone: zoo's run without the re-creation, the re-creation without zoo's training
            zoo_alone = _run_subprocess([c for c in cmd if c != "--reference"], args.threads)
            official_alone = _run_subprocess(cmd[:cmd.index("--precision")] + [
                "--threads", str(args.threads), "--official-alone"], args.threads)
            r["peak_memory_gb"] = zoo_alone["peak_memory_gb"] if isinstance(zoo_alone, dict) else float("nan")
            if isinstance(official_alone, dict):
                r["official_peak_memory_gb"] = official_alone["official_peak_memory_gb"]
        print(f"{r['method']:15s} {r['size']:>8s} {r['batch']:>5d} {r['train_s_per_it']:>11.3f} "
              f"{r['train_it_per_s']:>7.2f} {r['infer_s_per_call']:>8.3f} {r['infer_img_per_s']:>7.2f} "
              f"{r['peak_memory_gb']:>8.2f}" + (
                  f"   official loop {r['official_loop_s_per_it']:.3f} s/it, zoo is "
                  f"{r['official_loop_s_per_it'] / r['train_s_per_it']:.2f}x as fast; official inference "
                  f"{r['official_infer_s_per_call']:.3f} s/call, zoo "
                  f"{r['official_infer_s_per_call'] / r['infer_s_per_call']:.2f}x as fast"
                  if r.get("official_loop_s_per_it") else "") + (
                  f"; official loop alone peaks at {r['official_peak_memory_gb']:.2f} GB"
                  if r.get("official_peak_memory_gb") else "") + _official_note(r))
        if r.get("compiled") or r.get("mfu"):
            print(f"{'':15s} " + (f"compiled in {r['compile_s']:.1f} s (first iteration, not in the average)"
                                  if r.get("compiled") else "eager") + (
                  f"; {r['iteration_tflop']:.3f} TFLOP per iteration, MFU {100 * r['mfu']:.1f}%"
                  if r.get("mfu") else ""))
        if r.get("loss_check"):
            print(f"{'':15s} losses of one step on the same weights (zoo, official loop): " + ", ".join(
                f"{name} {ours:.6g} / {theirs:.6g}" for name, (ours, theirs) in r["loss_check"].items()))
        if r["schedule_cycle"] > 1:
            print(f"{'':15s} per iteration: zoo {_seconds(r['train_s_each'])}" + (
                f"; official loop {_seconds(r['official_loop_s_each'])}" if r.get("official_loop_s_each") else ""))


def _run_subprocess(cmd: list[str], threads: int) -> dict | str:
    """The RESULT dict printed by ``cmd``, or its stderr tail when it printed none."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    return json.loads(line[len("RESULT "):]) if line else proc.stderr[-2000:]


def _seconds(times: list[float]) -> str:
    return " ".join(f"{t:.1f}" for t in times) + " s"


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
