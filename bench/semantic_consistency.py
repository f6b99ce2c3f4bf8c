"""Semantic consistency of sim→photo translation on the toy world: CUT, FastCUT, SRUNIT, VSAIT, DECENT, CycleGAN.

Every method is trained from scratch with the same image size, number of iterations, batch size, data and seeds on
the embedded toy world (``UnpairedDataModule(root=None)``: flat simulator renders → photo-like renders of *other*
scenes), then translates held-out simulator frames (the ``test`` split). A segmentation network trained on the
photo-like domain (:func:`zoo.metrics.semantic.toy_segmenter`, trained once and cached under ``$ZOO_HOME``) labels
the translations, and the score is its mIoU against the simulator's own labels (Cityscapes train ids): a translation
that keeps every pixel's class scores like real photos; one that paints trees into the sky scores lower.

Class statistics (``--statistics``): ``unmatched`` (the default) draws the simulator domain with much more
vegetation than the photo domain (about 23 % of the pixels against 3 %, and 5 % building against 28 %; see
:data:`zoo.data.toy_world.STATISTICS_PRESETS`), as GTA5 frames against Cityscapes photos. That is the setting where
semantic flipping pays for a generator: matching the target's statistics means turning trees into buildings, which
SRUNIT's regulariser, VSAIT's binding and DECENT's density changes are built to resist. ``matched`` draws both
domains alike (the toy world as the README's first table used it).

Reference rows: the untranslated simulator frames (what the segmenter makes of the source domain as is) and the
photo-like renders of the same scenes (the target-domain score, the ceiling of a perfect translation). In the toy
world the flat sim frames already segment about as well as the photos (every class keeps a distinct flat colour), so
translation can only lose semantics here; the score says how much each method loses.

    python bench/semantic_consistency.py                                # all methods, 3 seeds, unmatched statistics
    python bench/semantic_consistency.py --methods cut srunit --seeds 0
    python bench/semantic_consistency.py --statistics matched --iterations 500 --seeds 0 --methods cyclegan decent
    python bench/semantic_consistency.py --json results.json

Each method is trained once per seed (``--seeds``: the seed of its training data and of its initialisation); the
held-out scenes are the same for all (``--eval-seed``). Per method the summary gives the mean mIoU over the seeds
with its standard deviation, minimum and maximum, and the mean IoU per class. Beside mIoU, each row has distribution
distances to real photo-like renders of other held-out scenes of the photo domain: the Fréchet and kernel distances
in the toy segmenter's own features (``FD-seg``, ``KD-seg``: :class:`zoo.metrics.PooledFeatures` on its deepest
encoder stage, available offline), and FID / KID with the FID Inception (``clean`` resize) when its weights are on
disk (``$ZOO_WEIGHTS_DIR`` or the zoo cache; ``n/a`` otherwise); averaged over the seeds.

Runs on the CPU (``--threads`` torch threads, 1 by default). Small settings: the absolute numbers say little about
the papers' 256-pixel, 200-epoch runs; the comparison between methods trained identically is the point. Cost at the
defaults (300 iterations at 32 px, six methods × 3 seeds) on a 2-core CPU: about 12 minutes when the machine is
idle, about 21 minutes when other jobs share its cores (see :data:`DEFAULTS`). The README's earlier single-seed
table used ``--statistics matched --seeds 0 --iterations 500 --methods cyclegan vsait decent``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics as stats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Per-method constructor overrides: small networks of comparable size; constant learning rate (no decay inside
#: the short run). Each method's paper losses, weights and optimisers are kept.
#: VSAIT's VGG19 has random weights (``feature_weights: null``; ``--set vsait:feature_weights=imagenet`` where the
#: torchvision file can be downloaded) and three shallow taps projected to one 8×8 grid of hypervectors at 32 px.
#: CUT, FastCUT and SRUNIT keep their own defaults (PatchNCE layers, temperature, patch-sampler MLP, lambdas; SRUNIT's
#: reg = reg_noise = 0.001 and the v2 regulariser) with the widths and the 6-block generator the others use here.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "cyclegan": {"ngf": 16, "ndf": 16, "generator": "resnet_6blocks", "n_epochs": 10**6, "n_epochs_decay": 0},
    "vsait": {"ngf": 16, "res_blocks": 6, "feature_weights": None,
              "feature_nodes": ["features.2", "features.7", "features.12"], "hv_dim": 1024,
              "lsh_kernel_size": [4, 2, 1], "lsh_stride": [4, 2, 1], "disc_channels": [256, 256, 1]},
    "decent": {"ngf": 16, "ndf": 16, "netG": "resnet_6blocks", "num_patches": 64, "n_epochs": 10**6,
               "n_epochs_decay": 0},
    "cut": {"mode": "cut", "ngf": 16, "ndf": 16, "netG": "resnet_6blocks", "num_patches": 64, "n_epochs": 10**6,
            "n_epochs_decay": 0},
    "fastcut": {"mode": "fastcut", "ngf": 16, "ndf": 16, "netG": "resnet_6blocks", "num_patches": 64,
                "n_epochs": 10**6, "n_epochs_decay": 0},
    # The whole run is a single epoch (toy_length = iterations × batch size). With SRUNIT's official
    # inact_epochs=100 the generator would not train at all in it (the official code trains only D during those
    # epochs) and the regulariser would never start; inact_epochs=0 trains G with the regulariser from the first
    # iteration, which is what is being measured (train_generator_when_inactive then has nothing left to do).
    "srunit": {"mode": "cut", "ngf": 16, "ndf": 16, "netG": "resnet_6blocks", "num_patches": 64, "n_epochs": 10**6,
               "n_epochs_decay": 0, "inact_epochs": 0},
}

#: Benchmark name -> registered zoo method (FastCUT is CUT with ``mode="fastcut"``).
REGISTERED_NAME = {"cyclegan": "cyclegan", "vsait": "vsait", "decent": "decent", "cut": "cut", "fastcut": "cut",
                   "srunit": "srunit"}

#: 300 iterations keep all six methods × 3 seeds within about 12 minutes on an idle 2-core CPU, 21 minutes on a
#: shared one. Measured single-seed runs at 32 px, batch 1, one thread, 50 iterations each on a 2-core machine busy
#: with other jobs: CycleGAN 11 s, VSAIT 12 s, DECENT 12 s, CUT 10 s, FastCUT 7 s, SRUNIT 16 s; their CPU time is
#: about half of that (0.05-0.11 s per iteration), plus a few seconds of scoring per run. One torch thread is the
#: default: on 2 cores that other processes also use, two threads each were many times slower (spinning threads).
DEFAULTS = {"methods": ["cyclegan", "vsait", "decent", "cut", "fastcut", "srunit"], "iterations": 300,
            "image_size": 32, "batch_size": 1, "seeds": [0, 1, 2], "eval_seed": 0, "eval_images": 64, "threads": 1,
            "statistics": "unmatched"}


def toy_datamodule(*, iterations: int, image_size: int, batch_size: int, seed: int, statistics: str,
                   data_class: type | None = None, **options: Any) -> Any:
    """The training data of every benchmark run: the toy world's sim → photo domains, one epoch of ``iterations``
    batches.

    Args:
        data_class: :class:`~zoo.data.UnpairedDataModule` (None) or a subclass taking its arguments (e.g.
            :class:`~zoo.data.BoxDataModule`, which adds object boxes to the same images).
        options: Further arguments of ``data_class`` (e.g. ``num_box``).
    """
    from zoo.data import UnpairedDataModule

    return (data_class or UnpairedDataModule)(
        root=None, toy_domain_a="sim", toy_domain_b="photo", image_size=image_size,
        toy_length=max(iterations * batch_size, 1), batch_size=batch_size, val_size=1, seed=seed,
        toy_statistics=statistics, **options)


def train_toy(registered_name: str, init_args: dict[str, Any], *, iterations: int, image_size: int, batch_size: int,
              seed: int, statistics: str, root_dir: str, data_class: type | None = None,
              data_options: dict[str, Any] | None = None) -> tuple[Any, float]:
    """Trains ``zoo.create(registered_name, **init_args)`` for ``iterations`` steps on :func:`toy_datamodule`, on the
    CPU, seeded with ``seed`` (data and initialisation).

    Returns:
        The model in eval mode and the training time in seconds.
    """
    import lightning as L

    import zoo
    from zoo.trainer import ZooTrainer

    L.seed_everything(seed, verbose=False)
    data = toy_datamodule(iterations=iterations, image_size=image_size, batch_size=batch_size, seed=seed,
                          statistics=statistics, data_class=data_class, **(data_options or {}))
    model = zoo.create(registered_name, **init_args)
    trainer = ZooTrainer(max_steps=iterations, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_image_grid=False, enable_model_summary=False, enable_progress_bar=False,
                         limit_val_batches=0, default_root_dir=root_dir)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return model.eval(), time.perf_counter() - start


def _train(method: str, *, iterations: int, image_size: int, batch_size: int, seed: int, statistics: str,
           root_dir: str, overrides: dict[str, Any]) -> tuple[Any, float]:
    """Trains benchmark method ``method`` (a key of :data:`METHOD_SETTINGS`) for ``iterations`` steps on the toy world.

    Returns:
        The model in eval mode and the training time in seconds.
    """
    return train_toy(REGISTERED_NAME[method], {**METHOD_SETTINGS.get(method, {}), **overrides},
                     iterations=iterations, image_size=image_size, batch_size=batch_size, seed=seed,
                     statistics=statistics, root_dir=root_dir)


def eval_set(num_images: int, image_size: int, *, split: str, seed: int, statistics: str,
             domain: str = "sim") -> dict[str, Any]:
    """Held-out scenes of one domain of the toy world, rendered both ways, with labels.

    The scenes are drawn with the class statistics of ``domain`` (``"sim"``: domain A, ``"photo"``: domain B) under
    the preset ``statistics``; with ``matched`` they are those of :func:`zoo.metrics.semantic.toy_eval_set`.

    Returns:
        ``{"sim": (N, 3, S, S), "photo": (N, 3, S, S)}`` float in [0, 1] (the same scenes) and ``"labels"``:
        (N, S, S) int64 Cityscapes train ids (255 = ignore).
    """
    import torch

    from zoo.data.toy_world import ToyPairedDataset, domain_statistics

    scene_statistics = domain_statistics(statistics)[0 if domain == "sim" else 1]
    data = ToyPairedDataset(length=num_images, size=image_size, task="sim2photo", split=split, seed=seed,
                            scene_statistics=scene_statistics)
    items = [data[i] for i in range(len(data))]
    return {"sim": torch.stack([item["real_a"] for item in items]).add_(1).div_(2),
            "photo": torch.stack([item["real_b"] for item in items]).add_(1).div_(2),
            "labels": torch.stack([item["label"] for item in items])}


def _parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["vsait:res_blocks=4", ...]`` → ``{"vsait": {"res_blocks": 4}}`` (values parsed as YAML scalars)."""
    import yaml

    result: dict[str, dict[str, Any]] = {}
    for item in items:
        method, _, assignment = item.partition(":")
        key, eq, value = assignment.partition("=")
        if not (method and key and eq):
            raise SystemExit(f"--set expects METHOD:KEY=VALUE; got {item!r}")
        result.setdefault(method, {})[key] = yaml.safe_load(value)
    return result


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line that reruns this benchmark with every setting explicit."""
    parts = ["python", "bench/semantic_consistency.py", "--methods", *args.methods, "--statistics", args.statistics,
             "--seeds", *map(str, args.seeds), "--iterations", str(args.iterations), "--image-size",
             str(args.image_size), "--batch-size", str(args.batch_size), "--eval-images", str(args.eval_images),
             "--eval-seed", str(args.eval_seed), "--threads", str(args.threads)]
    for item in args.overrides:
        parts += ["--set", item]
    if args.json:
        parts += ["--json", str(args.json)]
    return shlex.join(parts)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation (0 for one seed), min and max of mIoU over a method's runs (one per seed), the mean of
    the distances, and the mean IoU per class over the runs where the class was scored."""
    mious = [run["mIoU"] for run in runs]
    summary: dict[str, Any] = {"mIoU": stats.fmean(mious), "mIoU_std": stats.stdev(mious) if len(mious) > 1 else 0.0,
                               "mIoU_min": min(mious), "mIoU_max": max(mious), "seeds": [run["seed"] for run in runs],
                               "train_seconds": stats.fmean(run["train_seconds"] for run in runs)}
    for key in ("FD-seg", "KD-seg", "FID", "KID"):
        if all(key in run for run in runs):
            summary[key] = stats.fmean(run[key] for run in runs)
    classes = [name for name in runs[0]["per_class"] if name != "mIoU"]
    summary["per_class"] = {name: stats.fmean(values) for name in classes
                            if (values := [run["per_class"][name] for run in runs if name in run["per_class"]])}
    return summary


def _print_tables(result: dict[str, Any]) -> None:
    settings, rows = result["settings"], result["rows"]
    print(f"\nSemantic consistency, toy world sim → photo ({settings['statistics']} class statistics), "
          f"{settings['image_size']}px, {settings['iterations']} iterations, seeds {settings['seeds']}, "
          f"{settings['eval_images']} test scenes (mIoU over Cityscapes train ids; mean over seeds)")
    columns = ["mIoU", "std", "min", "max", "FD-seg", "KD-seg", "FID", "KID"]
    keys = {"std": "mIoU_std", "min": "mIoU_min", "max": "mIoU_max"}
    print(f"{'':36s} " + " ".join(f"{c:>7s}" for c in columns) + f" {'train s':>8s}")
    for row in rows:
        seconds = f"{row['train_seconds']:.0f}" if row.get("train_seconds") is not None else "-"
        values = " ".join(f"{row[keys.get(c, c)]:7.3f}" if keys.get(c, c) in row else f"{'-':>7s}" for c in columns)
        print(f"{row['method']:36s} {values} {seconds:>8s}")
    # Per-class IoU: the classes the test scenes contain, short names as headers.
    classes = [name for name in rows[0]["per_class"] if name != "mIoU"]
    print("\nIoU per class (mean over seeds)")
    print(f"{'':36s} " + " ".join(f"{name.split()[-1][:7]:>7s}" for name in classes))  # traffic sign: "sign"
    for row in rows:
        values = " ".join(f"{row['per_class'][name]:7.3f}" if name in row["per_class"] else f"{'-':>7s}"
                          for name in classes)
        print(f"{row['method']:36s} {values}")
    print(f"total {result['total_seconds']:.0f} s (segmenter {result['segmenter_seconds']:.0f} s)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=DEFAULTS["methods"], choices=sorted(METHOD_SETTINGS),
                        metavar="METHOD", help=f"methods to train and score, of {sorted(METHOD_SETTINGS)}")
    parser.add_argument("--statistics", choices=("unmatched", "matched"), default=DEFAULTS["statistics"],
                        help="class statistics of the toy world: unmatched (more vegetation in sim) or matched")
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"],
                        help="training seeds (data and initialisation); one training run per method and seed")
    parser.add_argument("--seed", type=int, dest="single_seed", default=None, help=argparse.SUPPRESS)  # old flag
    parser.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], help="training iterations each")
    parser.add_argument("--image-size", type=int, default=DEFAULTS["image_size"], help="side of the square images")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--eval-images", type=int, default=DEFAULTS["eval_images"], help="held-out scenes scored")
    parser.add_argument("--eval-seed", type=int, default=DEFAULTS["eval_seed"], help="seed of the held-out scenes")
    parser.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="constructor override for one method (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.single_seed is not None:
        args.seeds = [args.single_seed]
    print(f"reproduce: {reproduce_command(args)}", flush=True)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZOO_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    from zoo.metrics import FrechetDistance, InceptionFeatures, KernelDistance, PooledFeatures
    from zoo.metrics.semantic import SemanticConsistency
    from zoo.weights import WeightsUnavailableError

    torch.set_num_threads(args.threads)
    overrides = _parse_overrides(args.overrides)
    unknown = sorted(set(overrides) - set(args.methods))
    if unknown:
        raise SystemExit(f"--set names method(s) {unknown} that are not in --methods {args.methods}")

    start = time.perf_counter()
    metric = SemanticConsistency(image_size=args.image_size)
    segmenter_seconds = time.perf_counter() - start
    data = eval_set(args.eval_images, args.image_size, split="test", seed=args.eval_seed, statistics=args.statistics)
    reference_photos = eval_set(args.eval_images, args.image_size, split="val", seed=args.eval_seed,
                                statistics=args.statistics, domain="photo")["photo"]
    extractors = {"seg": PooledFeatures(metric.segmenter, "down2")}
    try:
        extractors["inception"] = InceptionFeatures("pytorch-fid", resize="clean")
    except WeightsUnavailableError as error:
        print(f"FID/KID: n/a ({str(error).splitlines()[0]})", flush=True)

    def distances(images: torch.Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        for space, extractor in extractors.items():
            frechet, kernel = FrechetDistance(extractor), KernelDistance(extractor, subsets=100, subset_size=1000)
            for metric_ in (frechet, kernel):
                metric_.update(reference_photos, real=True)
                metric_.update(images, real=False)
            names = ("FD-seg", "KD-seg") if space == "seg" else ("FID", "KID")
            out[names[0]], out[names[1]] = float(frechet.compute()), float(kernel.compute()[0])
        return out

    rows: list[dict[str, Any]] = []
    for name, images in (("photo (target domain, same scenes)", data["photo"]), ("sim (untranslated)", data["sim"])):
        miou = metric.score(images, data["labels"])
        rows.append({"method": name, "mIoU": miou, **distances(images), "per_class": metric.report(),
                     "train_seconds": None})
    with tempfile.TemporaryDirectory() as root_dir:
        for method in args.methods:
            runs: list[dict[str, Any]] = []
            for seed in args.seeds:
                model, seconds = _train(method, iterations=args.iterations, image_size=args.image_size,
                                        batch_size=args.batch_size, seed=seed, statistics=args.statistics,
                                        root_dir=root_dir, overrides=overrides.get(method, {}))
                miou = metric.score_translation(model, data["sim"], data["labels"], direction="a2b", seed=seed)
                per_class = metric.report()
                translated = model.translate(data["sim"], direction="a2b", seed=seed)
                runs.append({"seed": seed, "mIoU": miou, **distances(translated), "per_class": per_class,
                             "train_seconds": seconds})
                print(f"[{method} seed {seed}] mIoU {miou:.3f} after {args.iterations} iterations in {seconds:.0f} s",
                      flush=True)
            rows.append({"method": method, **summarize(runs), "runs": runs,
                         "init_args": {**METHOD_SETTINGS[method], **overrides.get(method, {})},
                         "registered_name": REGISTERED_NAME[method]})

    settings = {k: getattr(args, k) for k in ("methods", "statistics", "seeds", "iterations", "image_size",
                                              "batch_size", "eval_seed", "eval_images", "threads")}
    result = {"command": reproduce_command(args), "settings": settings, "segmenter_seconds": segmenter_seconds,
              "rows": rows, "total_seconds": time.perf_counter() - start, "torch": torch.__version__}
    _print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
