"""Semantic consistency of sim→photo translation on the toy world: VSAIT and DECENT against CycleGAN.

Every method is trained from scratch with the same image size, number of iterations, batch size, data and seed on
the embedded toy world (``UnpairedDataModule(root=None)``: flat simulator renders → photo-like renders of *other*
scenes), then translates held-out simulator frames (the ``test`` split). A segmentation network trained on the
photo-like domain (:func:`zoo.metrics.semantic.toy_segmenter`, trained once and cached under ``$ZOO_HOME``) labels
the translations, and the score is its mIoU against the simulator's own labels (Cityscapes train ids): a translation
that keeps every pixel's class scores like real photos; one that paints trees into the sky scores lower.

Reference rows: the untranslated simulator frames (what the segmenter makes of the source domain as is) and the
photo-like renders of the same scenes (the target-domain score, the ceiling of a perfect translation). In the toy
world the flat sim frames already segment about as well as the photos (every class keeps a distinct flat colour), so
translation can only lose semantics here; the score says how much each method loses.

    python bench/semantic_consistency.py                                # defaults quoted in the README
    python bench/semantic_consistency.py --methods cyclegan --iterations 300 --image-size 32
    python bench/semantic_consistency.py --json results.json

Beside mIoU, each row has distribution distances to real photo-like renders of other held-out scenes: the Fréchet and
kernel distances in the toy segmenter's own features (``FD-seg``, ``KD-seg``: :class:`zoo.metrics.PooledFeatures`
on its deepest encoder stage, available offline), and FID / KID with the FID Inception (``clean`` resize) when its
weights are on disk (``$ZOO_WEIGHTS_DIR`` or the zoo cache; ``n/a`` otherwise).

Runs on the CPU (``--threads`` threads). Small settings: the absolute numbers say little about the papers'
256-pixel, 200-epoch runs; the comparison between methods trained identically is the point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Per-method constructor overrides: small networks of comparable size; constant learning rate (no decay inside
#: the short run). Each method's paper losses, weights and optimisers are kept.
#: VSAIT's VGG19 has random weights (``feature_weights: null``; ``--set vsait:feature_weights=imagenet`` where the
#: torchvision file can be downloaded) and three shallow taps projected to one 8×8 grid of hypervectors at 32 px.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "cyclegan": {"ngf": 16, "ndf": 16, "generator": "resnet_6blocks", "n_epochs": 10**6, "n_epochs_decay": 0},
    "vsait": {"ngf": 16, "res_blocks": 6, "feature_weights": None,
              "feature_nodes": ["features.2", "features.7", "features.12"], "hv_dim": 1024,
              "lsh_kernel_size": [4, 2, 1], "lsh_stride": [4, 2, 1], "disc_channels": [256, 256, 1]},
    "decent": {"ngf": 16, "ndf": 16, "netG": "resnet_6blocks", "num_patches": 64, "n_epochs": 10**6,
               "n_epochs_decay": 0},
}

DEFAULTS = {"methods": ["cyclegan", "vsait", "decent"], "iterations": 500, "image_size": 32, "batch_size": 1,
            "seed": 0, "eval_images": 64, "threads": 2}


def _train(method: str, *, iterations: int, image_size: int, batch_size: int, seed: int, root_dir: str,
           overrides: dict[str, Any]) -> tuple[Any, float]:
    import lightning as L

    import zoo
    from zoo.data import UnpairedDataModule
    from zoo.trainer import ZooTrainer

    L.seed_everything(seed, verbose=False)
    data = UnpairedDataModule(root=None, toy_domain_a="sim", toy_domain_b="photo", image_size=image_size,
                              toy_length=max(iterations * batch_size, 1), batch_size=batch_size, val_size=1,
                              seed=seed)
    model = zoo.create(method, **{**METHOD_SETTINGS.get(method, {}), **overrides})
    trainer = ZooTrainer(max_steps=iterations, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_image_grid=False, enable_model_summary=False, enable_progress_bar=False,
                         limit_val_batches=0, default_root_dir=root_dir)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return model.eval(), time.perf_counter() - start


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=DEFAULTS["methods"], help="registered method names")
    parser.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], help="training iterations each")
    parser.add_argument("--image-size", type=int, default=DEFAULTS["image_size"], help="side of the square images")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the data and of every method")
    parser.add_argument("--eval-images", type=int, default=DEFAULTS["eval_images"], help="held-out scenes scored")
    parser.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="constructor override for one method (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZOO_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch

    import zoo
    from zoo.metrics import FrechetDistance, InceptionFeatures, KernelDistance, PooledFeatures
    from zoo.metrics.semantic import SemanticConsistency, toy_eval_set
    from zoo.weights import WeightsUnavailableError

    torch.set_num_threads(args.threads)
    unknown = [m for m in args.methods if m not in zoo.list_models()]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; registered: {zoo.list_models()}")
    overrides = _parse_overrides(args.overrides)

    start = time.perf_counter()
    metric = SemanticConsistency(image_size=args.image_size)
    segmenter_seconds = time.perf_counter() - start
    data = toy_eval_set(args.eval_images, args.image_size, split="test", seed=args.seed)
    reference_photos = toy_eval_set(args.eval_images, args.image_size, split="val", seed=args.seed)["photo"]
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
            model, seconds = _train(method, iterations=args.iterations, image_size=args.image_size,
                                    batch_size=args.batch_size, seed=args.seed, root_dir=root_dir,
                                    overrides=overrides.get(method, {}))
            miou = metric.score_translation(model, data["sim"], data["labels"], direction="a2b", seed=args.seed)
            translated = model.translate(data["sim"], direction="a2b", seed=args.seed)
            rows.append({"method": method, "mIoU": miou, **distances(translated), "per_class": metric.report(),
                         "train_seconds": seconds,
                         "init_args": {**METHOD_SETTINGS.get(method, {}), **overrides.get(method, {})}})
            print(f"[{method}] mIoU {miou:.3f} after {args.iterations} iterations in {seconds:.0f} s", flush=True)

    settings = {k: getattr(args, k) for k in ("methods", "iterations", "image_size", "batch_size", "seed",
                                              "eval_images", "threads")}
    result = {"settings": settings, "segmenter_seconds": segmenter_seconds, "rows": rows,
              "total_seconds": time.perf_counter() - start, "torch": torch.__version__}
    print(f"\nSemantic consistency, toy world sim → photo, {args.image_size}px, {args.iterations} iterations, "
          f"seed {args.seed}, {args.eval_images} test scenes (mIoU over Cityscapes train ids)")
    columns = ["mIoU", "FD-seg", "KD-seg", "FID", "KID"]
    print(f"{'':36s} " + " ".join(f"{c:>8s}" for c in columns) + f" {'train s':>8s}")
    for row in rows:
        seconds = f"{row['train_seconds']:.0f}" if row["train_seconds"] is not None else "-"
        values = " ".join(f"{row[c]:8.3f}" if c in row else f"{'n/a':>8s}" for c in columns)
        print(f"{row['method']:36s} {values} {seconds:>8s}")
    print(f"total {result['total_seconds']:.0f} s (segmenter {segmenter_seconds:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
