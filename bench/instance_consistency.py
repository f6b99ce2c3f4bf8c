"""Instance consistency of sim→photo translation on the toy world: InstaFormer against CycleGAN, CUT and VSAIT.

Whole-image translators can smear small objects (cars, people, poles, signs) into the background style; the
instance-aware InstaFormer (Kim et al., CVPR 2022) gives its transformer one token per object box and claims to keep
them. Every method is trained from scratch exactly as in ``bench/semantic_consistency.py`` (same helpers, image size,
iterations, batch size, seeds and small widths), on :class:`zoo.data.BoxDataModule` with ``root=None``: the toy
world's flat simulator renders → photo-like renders of *other* scenes, whose batches also carry the scenes' object
boxes (``box_a`` / ``box_b``). The images are exactly those of ``UnpairedDataModule`` with the same seed; InstaFormer
reads the boxes, the other methods take ``real_a`` / ``real_b`` only (their default ``training_inputs``) and ignore
them. Then each model translates held-out simulator frames (the ``test`` split; InstaFormer with those frames'
boxes, as it is meant to run, and once more without boxes: its official no-box inference).

Instances. In each held-out scene, every object box of the toy world (:func:`zoo.data.toy_world.frame_boxes`: car,
person, pole, traffic sign, traffic light, truck, bus; :data:`zoo.data.TOY_CLASSES`) defines one instance: the pixels
*inside its box that the simulator labels as its class* (Cityscapes train ids). Instances with fewer than
``--min-pixels`` such pixels (4 by default) are left out; at 64 px most toy objects cover 2 to 20 pixels, so this
keeps about half of them. Another object of the same class overlapping the box counts with it (the scene's exact
instance map is not part of the datasets' public items).

Scores (per method; and for two reference rows: the untranslated sim frames, and the photo-like renders of the very
same scenes, the target-domain ceiling). As for whole images (``semantic_consistency.py``), the toy world's flat sim
frames already segment about as well as its photos, objects included (box accuracy 0.67 against 0.65 with the
defaults), so translation can only lose accuracy here; ``inst dist`` is where the sim frames are far from the target:

- ``box acc``: a toy segmenter (:func:`zoo.metrics.semantic.toy_segmenter` at the image size, trained on the
  photo-like domain) labels the image; an instance's accuracy is the share of its pixels labelled with its class;
  ``box acc`` is the mean over all instances, the class columns the mean over that class's instances (a class with
  no instance: ``-``). ``mIoU`` is the whole-image mIoU of the same segmentation, for context. The segmenter is
  trained 1600 iterations (``--segmenter-iterations``; otherwise the default :class:`SegmenterConfig
  <zoo.metrics.semantic.SegmenterConfig>`): the default 400-iteration one of ``semantic_consistency.py`` labels no
  pixel as person, pole or sign at 64 px, even in the photos (box accuracy 0.00 / 0.02 / 0.00; cars 0.77), so it
  would score cars only. The 1600-iteration one reaches, on the photo renders of the 64 test scenes: car 0.83,
  person 0.42, pole 0.72, sign 0.18 (traffic lights, trucks and buses stay at 0: too few pixels to learn; their
  columns say nothing). Training it takes about 4 minutes on a busy 2-core CPU, once: it is cached under
  ``$ZOO_HOME/segmenters``.
- ``inst dist``: how far each object looks from the target domain's objects of its class. Descriptor of an instance
  (8 numbers): mean and standard deviation, over its pixels, of R, G, B (in [0, 1]) and of the gradient magnitude of
  the image's luma (central differences, replicated border; so the object's contrast with its surroundings
  counts). Reference: the instances of the photo-like renders of *other* held-out scenes (``val`` split, the photo
  domain's class statistics, ``--reference-images`` scenes), per class their mean ``mu_c`` and standard deviation
  ``sigma_c`` per descriptor entry (floored at 0.01). An instance's distance is the root-mean-square z-score
  ``sqrt(mean(((x - mu_c) / sigma_c) ** 2))``; ``inst dist`` is its mean over the instances (over those of classes
  with at least 5 reference instances). Lower: the objects look like photo-domain objects; an instance drawn from
  the reference distribution itself scores about 1 on average, so the photo row (same scenes, other instances than
  the reference) is the floor to compare with.

    python bench/instance_consistency.py                                   # 4 methods, 1 seed, 64 px
    python bench/instance_consistency.py --methods cyclegan instaformer --seeds 0 1 2 --iterations 1000
    python bench/instance_consistency.py --set instaformer:depth=4 --set instaformer:embed_c=128 --json out.json

Settings. ``--image-size`` must be a multiple of 32 with InstaFormer (its transformer takes a square content map of
``img_size = side / 4`` that three stride-2 convolutions cut into tokens of 8x8 features; set automatically). At
64 px that is a 2x2 grid of patch tokens plus up to 20 box tokens: InstaFormer's scene context is coarse there
(the paper's 352 px give 11x11), while the box tokens see each object at 8x8 RoIAlign resolution. InstaFormer's
widths are cut to the size of the others (``ngf`` 16: content features of 64 channels; tokens of 64; 2 blocks; MLP
128; style MLP 64; 64 NCE patches); ``num_box`` stays the official 20 (the data keep the 20 largest boxes of a scene,
which has up to about 30). CycleGAN, CUT and VSAIT keep the settings of ``semantic_consistency.py`` (chosen there for
32 px; at 64 px VSAIT's three VGG taps give a 16x16 grid of hypervectors). ``--statistics matched`` (the default
here) draws both domains alike, so that what is measured is the objects' treatment rather than the vegetation gap
of ``unmatched``.

Cost. Measured at 64 px, batch 1, one thread, 30 iterations each on a 2-core CPU shared with other jobs: CycleGAN
0.22 s per iteration, CUT 0.16 s, VSAIT 0.43 s (0.30 s of CPU time), InstaFormer 0.15 s. The defaults (600
iterations, 1 seed, 64 test scenes) took 13 minutes of wall time on a 2-core AMD EPYC shared with other jobs (the
process got 77 % of a core): training CycleGAN 115 s, CUT 77 s, VSAIT 197 s, InstaFormer 125 s (514 s together), the
segmenter's training 245 s (first run only: it is cached afterwards, so a rerun takes about 9 minutes), data and
scoring about 20 s; an idle machine is faster. The other methods of ``semantic_consistency.py`` (``decent``,
``fastcut``, ``srunit``) can be added with ``--methods``. The numbers are those of small, short runs: the comparison
between methods trained identically is the point, not the papers' absolute scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import shlex
import statistics as stats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_BENCH = str(Path(__file__).resolve().parent)
if _BENCH not in sys.path:  # the sibling benches, also when imported from elsewhere (tests)
    sys.path.insert(0, _BENCH)

import semantic_consistency as sc  # noqa: E402

#: InstaFormer's widths here: comparable in size to the others of :data:`semantic_consistency.METHOD_SETTINGS`
#: (about 1.3 M parameters, CycleGAN's 1.3 M, CUT's 1.1 M). ``img_size`` is set from ``--image-size``.
INSTAFORMER_SETTINGS: dict[str, Any] = {"ngf": 16, "ndf": 16, "embed_c": 64, "depth": 2, "heads": 4, "mlp_dim": 128,
                                        "adain_dim": 64, "num_patches": 64, "num_box": 20}

#: Benchmark name -> (registered zoo method, constructor arguments). InstaFormer plus every method of
#: ``semantic_consistency.py`` with the settings it uses there.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (sc.REGISTERED_NAME[name], settings) for name, settings in sc.METHOD_SETTINGS.items()},
    "instaformer": ("instaformer", INSTAFORMER_SETTINGS),
}

#: 600 iterations at 64 px keep four methods × 1 seed within about 10 minutes on a 2-core CPU (see the docstring).
DEFAULTS = {"methods": ["cyclegan", "cut", "vsait", "instaformer"], "iterations": 600, "image_size": 64,
            "batch_size": 1, "seeds": [0], "eval_seed": 0, "eval_images": 64, "reference_images": 128,
            "min_pixels": 4, "segmenter_iterations": 1600, "threads": 1, "statistics": "matched"}

#: Reference instances a class needs for its descriptor statistics; instances of rarer classes get no distance.
MIN_REFERENCE_INSTANCES = 5
#: Floor of the reference standard deviations (descriptor entries are in [0, 1]-ish units).
SIGMA_FLOOR = 0.01
#: Short column names of the toy classes.
SHORT = {"traffic sign": "sign", "traffic light": "light"}


def method_init_args(method: str, image_size: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of benchmark method ``method`` at ``image_size`` (InstaFormer: ``img_size = side / 4``)."""
    settings = dict(METHODS[method][1])
    if METHODS[method][0] == "instaformer":
        settings["img_size"] = image_size // 4
    return {**settings, **overrides}


def _train_ids() -> dict[str, int]:
    from zoo.data.toy_world import CITYSCAPES_CLASSES

    return {c.name: c.train_id for c in CITYSCAPES_CLASSES}


def instance_eval_set(num_images: int, image_size: int, *, split: str, seed: int, statistics: str,
                      domain: str = "sim", num_box: int = 20) -> dict[str, Any]:
    """:func:`semantic_consistency.eval_set` (sim and photo renders of the same held-out scenes, their labels) plus the
    scenes' object boxes.

    The boxes come from ``ToyUnpairedDataset(boxes=True)`` whose domain-A statistics are those of ``domain``: its
    item ``i`` shows the scene of ``ToyPairedDataset``'s item ``i`` (same seed and split; checked on the labels).

    Returns:
        ``sim``, ``photo`` (N, 3, S, S) in [0, 1], ``labels`` (N, S, S) train ids, ``boxes``: per scene the list of
        :func:`~zoo.data.toy_world.frame_boxes` dicts (pixel ``bbox`` ``[x0, y0, x1, y1]``, ``label`` a class name),
        and ``box_rows`` (N, num_box, 5): the same boxes as the batch contract has them (normalised, -1 padding).
    """
    import torch

    from zoo.data import TOY_CLASSES, fit_boxes
    from zoo.data.boxes import BoxAnnotation, identity_geometry
    from zoo.data.toy_world import ToyUnpairedDataset, domain_statistics

    data = sc.eval_set(num_images, image_size, split=split, seed=seed, statistics=statistics, domain=domain)
    scene_statistics = domain_statistics(statistics)[0 if domain == "sim" else 1]
    scenes = ToyUnpairedDataset(length=num_images, size=image_size, domain_a="label", domain_b="label", split=split,
                                seed=seed, statistics=(scene_statistics, scene_statistics), boxes=True)
    boxes = []
    for i in range(num_images):
        item = scenes[i]
        if not torch.equal(item["label_a"], data["labels"][i]):
            raise RuntimeError(f"instance_eval_set: the boxes' scene {i} is not the scene of eval_set; the toy "
                               "world's datasets no longer share their scene seeds.")
        boxes.append(item["boxes_a"])
    geometry = identity_geometry(image_size, image_size)
    rows = torch.stack([fit_boxes(BoxAnnotation(b), geometry, classes=TOY_CLASSES, num_box=num_box) for b in boxes])
    return {**data, "boxes": boxes, "box_rows": rows}


def scene_instances(labels: Any, boxes: list[list[dict[str, Any]]], *, min_pixels: int) -> dict[str, Any]:
    """The scored instances of a set of scenes: per box of a :data:`~zoo.data.TOY_CLASSES` class, the pixels inside it
    labelled with its class, when there are at least ``min_pixels`` of them.

    Returns:
        ``image`` (M,) int64 scene index, ``label`` (M,) int64 index into TOY_CLASSES, ``train_id`` (M,) int64,
        ``masks`` (M, H, W) bool.
    """
    import torch

    from zoo.data import TOY_CLASSES

    train_ids = _train_ids()
    image, label, masks = [], [], []
    for i, scene_boxes in enumerate(boxes):
        for box in scene_boxes:
            if box["label"] not in TOY_CLASSES:
                continue
            x0, y0, x1, y1 = (int(v) for v in box["bbox"])
            mask = torch.zeros(labels.shape[-2:], dtype=torch.bool)
            mask[y0:y1, x0:x1] = labels[i, y0:y1, x0:x1] == train_ids[box["label"]]
            if int(mask.sum()) >= min_pixels:
                image.append(i)
                label.append(TOY_CLASSES.index(box["label"]))
                masks.append(mask)
    height, width = labels.shape[-2:]
    label_t = torch.tensor(label, dtype=torch.int64)
    return {"image": torch.tensor(image, dtype=torch.int64), "label": label_t,
            "train_id": torch.tensor([train_ids[TOY_CLASSES[k]] for k in label], dtype=torch.int64),
            "masks": torch.stack(masks) if masks else torch.zeros(0, height, width, dtype=torch.bool)}


def instance_descriptors(images: Any, instances: dict[str, Any], chunk: int = 256) -> Any:
    """(M, 8) descriptors of the instances in ``images`` (N, 3, H, W) in [0, 1]: mean of R, G, B and of the luma's
    gradient magnitude over each instance's pixels, then their standard deviations (population)."""
    import torch
    import torch.nn.functional as F

    images = images.float().clamp(0, 1)
    luma = (images * images.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdim=True)
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    channels = torch.cat([images, (gx.square() + gy.square()).sqrt()], 1)
    out = []
    for start in range(0, len(instances["image"]), chunk):
        x = channels[instances["image"][start:start + chunk]]
        m = instances["masks"][start:start + chunk, None].float()
        n = m.sum((2, 3))
        mean = (x * m).sum((2, 3)) / n
        std = (((x - mean[..., None, None]).square() * m).sum((2, 3)) / n).sqrt()
        out.append(torch.cat([mean, std], 1))
    return torch.cat(out) if out else channels.new_zeros(0, 8)


def reference_statistics(descriptors: Any, labels: Any) -> dict[int, tuple[Any, Any]]:
    """Per class index with at least :data:`MIN_REFERENCE_INSTANCES` instances: mean and standard deviation (floored at
    :data:`SIGMA_FLOOR`) of its descriptors."""
    result = {}
    for k in labels.unique().tolist():
        d = descriptors[labels == k]
        if len(d) >= MIN_REFERENCE_INSTANCES:
            result[k] = (d.mean(0), d.std(0).clamp(min=SIGMA_FLOOR))
    return result


def instance_distances(descriptors: Any, labels: Any, reference: dict[int, tuple[Any, Any]]) -> Any:
    """(M,) root-mean-square z-score of each descriptor against its class's reference (NaN: class not in it)."""
    import torch

    out = torch.full((len(labels),), math.nan)
    for k, (mu, sigma) in reference.items():
        chosen = labels == k
        out[chosen] = ((descriptors[chosen] - mu) / sigma).square().mean(1).sqrt()
    return out


def _mean(values: Any) -> float | None:
    values = values[~values.isnan()]
    return float(values.mean()) if len(values) else None


def score_images(images: Any, data: dict[str, Any], instances: dict[str, Any], metric: Any,
                 reference: dict[int, tuple[Any, Any]]) -> dict[str, Any]:
    """Every score of one set of images (N, 3, S, S) in [0, 1] showing the scenes of ``data``."""
    from zoo.data import TOY_CLASSES

    miou = metric.score(images, data["labels"])
    predicted = metric.predict(images)
    correct = (predicted[instances["image"]] == instances["train_id"][:, None, None]) & instances["masks"]
    accuracy = correct.sum((1, 2)).float() / instances["masks"].sum((1, 2)).float()
    distance = instance_distances(instance_descriptors(images, instances), instances["label"], reference)
    per_class, per_class_dist = {}, {}
    for k, name in enumerate(TOY_CLASSES):
        chosen = instances["label"] == k
        if int(chosen.sum()):
            per_class[name] = float(accuracy[chosen].mean())
            if (value := _mean(distance[chosen])) is not None:
                per_class_dist[name] = value
    return {"box_acc": float(accuracy.mean()) if len(accuracy) else None, "per_class": per_class,
            "inst_dist": _mean(distance), "per_class_dist": per_class_dist, "mIoU": miou}


def _fmean(values: Any) -> float | None:
    values = [v for v in values if v is not None]
    return stats.fmean(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and for ``box_acc`` standard deviation, 0 for one seed, min and max) over a method's runs."""
    accuracies = [run["box_acc"] for run in runs if run["box_acc"] is not None]
    summary: dict[str, Any] = {
        "box_acc": _fmean(accuracies), "box_acc_std": stats.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "box_acc_min": min(accuracies, default=None), "box_acc_max": max(accuracies, default=None),
        "inst_dist": _fmean(run["inst_dist"] for run in runs), "mIoU": stats.fmean(run["mIoU"] for run in runs),
        "seeds": [run["seed"] for run in runs], "train_seconds": stats.fmean(run["train_seconds"] for run in runs)}
    for key in ("per_class", "per_class_dist"):
        names = dict.fromkeys(name for run in runs for name in run[key])
        summary[key] = {name: stats.fmean(run[key][name] for run in runs if name in run[key]) for name in names}
    return summary


def reproduce_command(args: argparse.Namespace) -> str:
    """The command line that reruns this benchmark with every setting explicit."""
    parts = ["python", "bench/instance_consistency.py", "--methods", *args.methods, "--statistics", args.statistics,
             "--seeds", *map(str, args.seeds), "--iterations", str(args.iterations), "--image-size",
             str(args.image_size), "--batch-size", str(args.batch_size), "--eval-images", str(args.eval_images),
             "--reference-images", str(args.reference_images), "--eval-seed", str(args.eval_seed), "--min-pixels",
             str(args.min_pixels), "--segmenter-iterations", str(args.segmenter_iterations), "--threads",
             str(args.threads)]
    for item in args.overrides:
        parts += ["--set", item]
    if args.json:
        parts += ["--json", str(args.json)]
    return shlex.join(parts)


def _format(value: float | None) -> str:
    return f"{value:7.3f}" if value is not None else f"{'-':>7s}"


def _print_table(result: dict[str, Any]) -> None:
    from zoo.data import TOY_CLASSES

    settings, rows, counts = result["settings"], result["rows"], result["instances"]
    print(f"\nInstance consistency, toy world sim → photo ({settings['statistics']} class statistics), "
          f"{settings['image_size']}px, {settings['iterations']} iterations, seeds {settings['seeds']}, "
          f"{settings['eval_images']} test scenes, {sum(counts.values())} instances of >= {settings['min_pixels']} px "
          f"({', '.join(f'{SHORT.get(n, n)} {c}' for n, c in counts.items())}); mean over seeds")
    print("box acc: share of an instance's pixels the photo-trained segmenter labels with its class, mean over "
          "instances (class columns: over that class's); inst dist: RMS z-score of the instances' colour/texture "
          f"descriptors against photo-domain instances of {settings['reference_images']} other scenes (lower = "
          "more target-like)")
    classes = [name for name in TOY_CLASSES if counts.get(name)]
    columns = ["mIoU", "box acc", *[SHORT.get(name, name) for name in classes], "inst dist"]
    print(f"{'':36s} " + " ".join(f"{c:>7s}" for c in columns) + f" {'train s':>8s}")
    for row in rows:
        values = [row["mIoU"], row["box_acc"], *[row["per_class"].get(name) for name in classes], row["inst_dist"]]
        seconds = f"{row['train_seconds']:.0f}" if row.get("train_seconds") is not None else "-"
        print(f"{row['method']:36s} " + " ".join(_format(v) for v in values) + f" {seconds:>8s}")
    print(f"total {result['total_seconds']:.0f} s (segmenter {result['segmenter']['seconds']:.0f} s)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=DEFAULTS["methods"], choices=sorted(METHODS),
                        metavar="METHOD", help=f"methods to train and score, of {sorted(METHODS)}")
    parser.add_argument("--statistics", choices=("matched", "unmatched"), default=DEFAULTS["statistics"],
                        help="class statistics of the toy world: matched (default) or unmatched (lush sim)")
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULTS["seeds"],
                        help="training seeds (data and initialisation); one training run per method and seed")
    parser.add_argument("--iterations", type=int, default=DEFAULTS["iterations"], help="training iterations each")
    parser.add_argument("--image-size", type=int, default=DEFAULTS["image_size"],
                        help="side of the square images (a multiple of 32 with instaformer)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument("--eval-images", type=int, default=DEFAULTS["eval_images"], help="held-out scenes scored")
    parser.add_argument("--reference-images", type=int, default=DEFAULTS["reference_images"],
                        help="photo-domain scenes (val split) whose instances are the distance's reference")
    parser.add_argument("--eval-seed", type=int, default=DEFAULTS["eval_seed"], help="seed of the held-out scenes")
    parser.add_argument("--min-pixels", type=int, default=DEFAULTS["min_pixels"],
                        help="smallest instance scored, in pixels of its class inside its box")
    parser.add_argument("--segmenter-iterations", type=int, default=DEFAULTS["segmenter_iterations"],
                        help="training iterations of the toy segmenter (400: the default one of zoo.metrics.semantic)")
    parser.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="torch CPU threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="constructor override for one method (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.min_pixels < 1:
        parser.error("--min-pixels must be >= 1")
    if "instaformer" in args.methods and args.image_size % 32:
        parser.error(f"--image-size must be a multiple of 32 with instaformer (its img_size = side / 4 must be a "
                     f"multiple of 8); got {args.image_size}")
    overrides = sc._parse_overrides(args.overrides)
    unknown = sorted(set(overrides) - set(args.methods))
    if unknown:
        parser.error(f"--set names method(s) {unknown} that are not in --methods {args.methods}")
    print(f"reproduce: {reproduce_command(args)}", flush=True)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZOO_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    import torch
    from machine import describe_machine

    from zoo.data import TOY_CLASSES, BoxDataModule
    from zoo.metrics.semantic import SegmenterConfig, SemanticConsistency

    torch.set_num_threads(args.threads)
    machine = describe_machine()
    print(f"machine: {machine}", flush=True)
    start = time.perf_counter()
    init_args = {method: method_init_args(method, args.image_size, overrides.get(method, {}))
                 for method in args.methods}
    num_box = init_args.get("instaformer", INSTAFORMER_SETTINGS)["num_box"]
    segmenter_config = SegmenterConfig(image_size=args.image_size, iterations=args.segmenter_iterations)
    print(f"segmenter: toy segmenter at {args.image_size} px, {args.segmenter_iterations} iterations (shipped or "
          "cached, else trained now and cached)", flush=True)
    metric = SemanticConsistency(image_size=args.image_size, segmenter_config=segmenter_config)
    segmenter_seconds = time.perf_counter() - start
    data = instance_eval_set(args.eval_images, args.image_size, split="test", seed=args.eval_seed,
                             statistics=args.statistics, num_box=num_box)
    instances = scene_instances(data["labels"], data["boxes"], min_pixels=args.min_pixels)
    photos = instance_eval_set(args.reference_images, args.image_size, split="val", seed=args.eval_seed,
                               statistics=args.statistics, domain="photo", num_box=num_box)
    reference_instances = scene_instances(photos["labels"], photos["boxes"], min_pixels=args.min_pixels)
    reference = reference_statistics(instance_descriptors(photos["photo"], reference_instances),
                                     reference_instances["label"])
    counts = {name: int((instances["label"] == k).sum()) for k, name in enumerate(TOY_CLASSES)}
    reference_counts = {name: int((reference_instances["label"] == k).sum()) for k, name in enumerate(TOY_CLASSES)}

    def score(images: torch.Tensor) -> dict[str, Any]:
        return score_images(images, data, instances, metric, reference)

    rows: list[dict[str, Any]] = []
    for name, images in (("photo (target domain, same scenes)", data["photo"]), ("sim (untranslated)", data["sim"])):
        rows.append({"method": name, **score(images), "train_seconds": None})
    with tempfile.TemporaryDirectory() as root_dir:
        for method in args.methods:
            registered = METHODS[method][0]
            runs: dict[str, list[dict[str, Any]]] = {}
            for seed in args.seeds:
                model, seconds = sc.train_toy(registered, init_args[method], iterations=args.iterations,
                                              image_size=args.image_size, batch_size=args.batch_size, seed=seed,
                                              statistics=args.statistics, root_dir=root_dir,
                                              data_class=BoxDataModule, data_options={"num_box": num_box})
                variants = {method: {}}
                if "boxes" in inspect.signature(model.translate).parameters:  # instance-aware: the test boxes
                    variants = {method: {"boxes": data["box_rows"]}, f"{method} (no boxes at test)": {}}
                for row_name, extra in variants.items():
                    translated = model.translate(data["sim"], direction="a2b", seed=seed, **extra)
                    run = {"seed": seed, **score(translated), "train_seconds": seconds}
                    runs.setdefault(row_name, []).append(run)
                    print(f"[{row_name} seed {seed}] box acc {_format(run['box_acc']).strip()}, inst dist "
                          f"{_format(run['inst_dist']).strip()}, mIoU {run['mIoU']:.3f} after {args.iterations} "
                          f"iterations in {seconds:.0f} s", flush=True)
            for row_name, method_runs in runs.items():
                rows.append({"method": row_name, **summarize(method_runs), "runs": method_runs,
                             "registered_name": registered, "init_args": init_args[method],
                             "test_boxes": row_name == method and len(runs) > 1})

    settings = {k: getattr(args, k) for k in ("methods", "statistics", "seeds", "iterations", "image_size",
                                              "batch_size", "eval_seed", "eval_images", "reference_images",
                                              "min_pixels", "segmenter_iterations", "threads")}
    result = {"command": reproduce_command(args), "settings": settings, "machine": machine,
              "segmenter": {**dataclasses.asdict(segmenter_config), "seconds": segmenter_seconds},
              "instances": counts,
              "reference_instances": reference_counts, "num_box": num_box, "rows": rows,
              "total_seconds": time.perf_counter() - start, "torch": torch.__version__}
    _print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
