"""Train the small models that ship inside zoo (``zoo/pretrained/``) on the embedded toy world, one command each.

    python bench/train_zoo_weights.py --name vsait.toy_sim2photo
    python bench/train_zoo_weights.py --method srgan          # every shipped entry of a method
    python bench/train_zoo_weights.py --all                   # all of them, in order (srgan after srresnet)
    python bench/train_zoo_weights.py --list

Each entry runs the real ``zoo fit --config configs/zoo_weights/<method>.yaml`` (CSV logger), saves the last
checkpoint as an fp16 safetensors bundle ``zoo/pretrained/<name>.safetensors``, measures it on the toy world's test
split with ``zoo.evaluate.evaluate_model``, and writes the model card (``<name>.json`` and ``<name>.md``), the
training losses (``<name>.losses.csv``) and the expected outputs of the regression test
(``tests/data/shipped_outputs/<name>.safetensors``). Training time and machine go into the card.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine  # noqa: E402

#: Largest shipped file, and all of them together (bytes).
MAX_FILE_BYTES = 3_000_000
MAX_TOTAL_BYTES = 20_000_000


@dataclass(frozen=True)
class ToyEntry:
    """One shipped model: its config, what it does, and what it is measured with."""

    method: str
    task: str
    description: str
    metrics: tuple[str, ...]
    direction: str = "a2b"
    init_from: str | None = None  # a shipped entry the generator starts from (SRGAN starts from SRResNet)
    baseline: str | None = None  # a method measured on the same split for comparison (bicubic for SR)

    @property
    def config(self) -> str:
        return f"configs/zoo_weights/{self.method}.yaml"


_SIM2PHOTO = "toy-world simulator render -> photo-like render, 64 x 64"
_SEMANTIC = ("miou", "pixel_accuracy")
ENTRIES: dict[str, ToyEntry] = {
    "pix2pix.toy_label2photo": ToyEntry(
        "pix2pix", "toy-world colour label map -> photo-like render, 64 x 64",
        "pix2pix (U-Net generator, PatchGAN) trained on aligned label-map/photo pairs of the toy world.",
        ("psnr", "ssim", *_SEMANTIC)),
    "cyclegan.toy_sim2photo": ToyEntry(
        "cyclegan", _SIM2PHOTO, "CycleGAN (ResNet generators, PatchGAN, cycle and identity losses) trained on "
        "unpaired simulator and photo-like renders of the toy world.", _SEMANTIC),
    "cut.toy_sim2photo": ToyEntry(
        "cut", _SIM2PHOTO, "CUT (one generator, PatchNCE contrastive loss) trained on unpaired toy-world renders.",
        _SEMANTIC),
    "srunit.toy_sim2photo": ToyEntry(
        "srunit", _SIM2PHOTO, "SRUNIT (CUT with the semantic-robustness regulariser) trained on unpaired toy-world "
        "renders.", _SEMANTIC),
    "decent.toy_sim2photo": ToyEntry(
        "decent", _SIM2PHOTO, "DECENT (CUT-style generator with density-changing regularisation by normalising "
        "flows) trained on unpaired toy-world renders.", _SEMANTIC),
    "vsait.toy_sim2photo": ToyEntry(
        "vsait", _SIM2PHOTO, "VSAIT (hypervector-algebra semantic consistency, feature-space discriminator) trained "
        "on unpaired toy-world renders; its VGG-19 keeps random weights (no download).", _SEMANTIC),
    "instaformer.toy_sim2photo": ToyEntry(
        "instaformer", "toy-world simulator render -> photo-like render, 64 x 64, with or without object boxes",
        "InstaFormer (transformer over patch and object-box tokens, global and instance-level PatchNCE) trained on "
        "unpaired toy-world renders with the boxes of their cars, people, poles and signs.", _SEMANTIC),
    "munit.toy_sim2photo": ToyEntry(
        "munit", "toy-world simulator render <-> photo-like render, 64 x 64, one output per style code",
        "MUNIT (content and style codes, AdaIN decoder) trained on unpaired toy-world renders.", _SEMANTIC),
    "drit.toy_sim2photo": ToyEntry(
        "drit", "toy-world simulator render <-> photo-like render, 64 x 64, one output per attribute code",
        "DRIT++ (content and attribute encoders, mode-seeking loss) trained on unpaired toy-world renders.",
        _SEMANTIC),
    "lomit.toy_sim2photo": ToyEntry(
        "lomit", "toy-world simulator render -> photo-like render under car masks, guided by an exemplar, 64 x 64",
        "LOMIT (exemplar-guided translation inside co-segmentation masks) trained on toy-world renders with car "
        "masks.", ("change_inside_mask", "change_outside_mask")),
    "pix2pixhd.toy_label2photo": ToyEntry(
        "pix2pixhd", "toy-world Cityscapes label ids + instance map -> photo-like render, 64 x 64",
        "pix2pixHD (global generator, two-scale discriminator with feature matching; no VGG loss) trained on toy-"
        "world label maps.", ("psnr", "ssim", *_SEMANTIC)),
    "srresnet.toy_x4": ToyEntry(
        "srresnet", "x4 super-resolution of toy-world photo-like renders (16 x 16 -> 64 x 64)",
        "SRResNet (MSE) trained on bicubic-downsampled toy-world renders.", ("psnr", "ssim"), baseline="bicubic"),
    "srgan.toy_x4": ToyEntry(
        "srgan", "x4 super-resolution of toy-world photo-like renders (16 x 16 -> 64 x 64)",
        "SRGAN (VGG22 content loss with random VGG weights, adversarial loss) started from srresnet.toy_x4.",
        ("psnr", "ssim"), init_from="srresnet.toy_x4", baseline="bicubic"),
}

METRICS_PROTOCOL = ("zoo.evaluate.evaluate_model on the first {images} test items of the config's toy-world data "
                    "(seeded translations, seed 0): miou / pixel_accuracy segment the translation with zoo's toy-world "
                    "segmenter and compare with the source scene's labels; psnr / ssim compare with the aligned "
                    "target (Y channel with a 4-pixel border shaved for super-resolution); change_inside_mask / "
                    "change_outside_mask are the mean absolute change of the translation from its input (in [0, 1], "
                    "averaged over RGB) inside and outside the input's mask, each item guided by the photo of "
                    "another scene as exemplar.")
#: Metrics measured here rather than by zoo.evaluate: where a masked translation changes its input.
MASK_METRICS = ("change_inside_mask", "change_outside_mask")


def _run_folder(work_dir: Path, name: str) -> Path:
    runs = sorted((work_dir / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    if not runs:
        raise FileNotFoundError(f"no run of {name} under {work_dir}")
    return runs[-1]


def _fit(name: str, entry: ToyEntry, *, output_dir: Path, work_dir: Path, max_steps: int | None) -> tuple[Path, float]:
    command = [sys.executable, "-m", "zoo", "fit", "--config", str(REPO / entry.config),
               f"--trainer.default_root_dir={work_dir}", f"--trainer.run_name={name}"]
    if max_steps is not None:
        command.append(f"--trainer.max_steps={max_steps}")
    if entry.init_from is not None:
        command.append(f"--model.init_from={output_dir / (entry.init_from + '.safetensors')}")
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return _run_folder(work_dir, name), time.perf_counter() - start


def _losses(run_dir: Path, destination: Path) -> None:
    """Keep the step and the training losses of the CSV log (rows without any loss are dropped)."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in (rows[0].keys() if rows else []) if k.startswith("train/") or k in ("step", "epoch")]
    kept = [{k: row[k] for k in keys} for row in rows if any(row[k] for k in keys if k.startswith("train/"))]
    with open(destination, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(kept)


def _mask_change(model: torch.nn.Module, entry: ToyEntry, images: int) -> dict[str, float]:
    """Mean absolute change of each translation from its input inside and outside the input's mask."""
    from zoo.evaluate import test_batch
    from zoo.metrics.translation import translate_for_metrics

    batch = test_batch(REPO / entry.config, images)
    fake = translate_for_metrics(model, batch, direction=entry.direction, seed=0).fake
    change = (fake - (batch["real_a"] + 1) / 2).abs().mean(1, keepdim=True)
    mask = batch["mask_a"]
    return {"change_inside_mask": round(float((change * mask).sum() / mask.sum()), 4),
            "change_outside_mask": round(float((change * (1 - mask)).sum() / (1 - mask).sum()), 4)}


def measure(model: torch.nn.Module, entry: ToyEntry, images: int) -> dict[str, float]:
    from zoo.evaluate import evaluate_model

    if entry.metrics == MASK_METRICS:
        return _mask_change(model, entry, images)
    config = REPO / entry.config
    result = evaluate_model(model, config, metrics=list(entry.metrics), directions=entry.direction,
                            max_images=images, progress=False, seed=0, device="cpu")
    metrics = {k: round(float(v), 4) for k, v in result["metrics"][entry.direction].items()}
    if entry.baseline is not None:
        import zoo

        scale = getattr(model, "scale", None)
        baseline = zoo.create(entry.baseline, **({"scale": scale} if scale else {}))
        base = evaluate_model(baseline, config, metrics=list(entry.metrics), directions=entry.direction,
                              max_images=images, progress=False, seed=0, device="cpu")
        metrics.update({f"{entry.baseline}_{k}": round(float(v), 4)
                        for k, v in base["metrics"][entry.direction].items()})
    return metrics


def regression_outputs(model: torch.nn.Module, name: str, count: int = 2) -> torch.Tensor:
    """What a shipped model makes of the first ``count`` test items of its data (seeded): ``(count, C, H, W)`` in
    [0, 1]. ``tests/test_shipped_weights.py`` compares this with the outputs stored when the weights were made."""
    from zoo.evaluate import test_batch
    from zoo.metrics.translation import translate_for_metrics

    entry = ENTRIES[name]
    batch = test_batch(REPO / entry.config, count)
    return translate_for_metrics(model, batch, direction=entry.direction, seed=0).fake


def write_expected_outputs(name: str, model: torch.nn.Module, expected_dir: Path) -> Path:
    """Store the regression test's expected outputs of a shipped model (fp16 safetensors)."""
    from safetensors.torch import save_file

    expected_dir.mkdir(parents=True, exist_ok=True)
    path = expected_dir / f"{name}.safetensors"
    save_file({"outputs": regression_outputs(model, name).half().contiguous()}, str(path))
    return path


def train(name: str, *, output_dir: Path, work_dir: Path, max_steps: int | None = None, images: int = 50,
          expected_dir: Path | None = None) -> dict:
    """Train, save, measure and describe one shipped entry; returns its model card."""
    import zoo
    from zoo.hub import save_bundle
    from zoo.shipped_weights import model_card_markdown
    from zoo.weights import SHIPPED_LICENSE, file_sha256

    entry = ENTRIES[name]
    output_dir.mkdir(parents=True, exist_ok=True)
    run_dir, seconds = _fit(name, entry, output_dir=output_dir, work_dir=work_dir, max_steps=max_steps)
    model = zoo.load(run_dir / "checkpoints" / "last.ckpt")
    if "init_from" in model.hparams:
        model.hparams["init_from"] = None  # the generator's starting point is in the card, not a path on this machine
    target = output_dir / f"{name}.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        bundle = save_bundle(model, tmp, dtype=torch.float16)
        shutil.move(bundle / "model.safetensors", target)
    size = target.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SystemExit(f"{target} is {size / 1e6:.2f} MB, over the {MAX_FILE_BYTES / 1e6:.0f} MB limit per file: "
                         f"narrow the networks in {entry.config}")
    shipped = zoo.load(target)
    iterations = int(torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                                weights_only=True)["global_step"]) // type(model).optimizer_steps_per_iteration
    card = {
        "name": name,
        "method": entry.method,
        "class_path": f"{type(model).__module__}.{type(model).__qualname__}",
        "task": entry.task,
        "description": entry.description,
        "direction": entry.direction,
        "data": "zoo's embedded toy world (procedural street scenes; no data files), training split of the config",
        "config": entry.config,
        "command": f"python bench/train_zoo_weights.py --name {name}",
        "init_from": entry.init_from,
        "iterations": iterations,
        "train_seconds": round(seconds, 1),
        "machine": describe_machine(),
        "file": target.name,
        "size_bytes": size,
        "sha256": file_sha256(target),
        "parameters": sum(p.numel() for p in shipped.state_dict().values()),
        "metrics": measure(shipped, entry, images),
        "metrics_protocol": METRICS_PROTOCOL.format(images=images),
        "license": SHIPPED_LICENSE,
        "zoo_version": zoo.__version__,
        "created": datetime.date.today().isoformat(),
    }
    (output_dir / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(model_card_markdown(card))
    _losses(run_dir, output_dir / f"{name}.losses.csv")
    if expected_dir is not None:
        write_expected_outputs(name, shipped, expected_dir)
    print(f"{name}: {iterations} iterations in {seconds:.0f} s, {size / 1e6:.2f} MB, {card['metrics']}", flush=True)
    return card


def write_segmenter(output_dir: Path) -> Path:
    """Train zoo's default toy-world segmenter (the metrics' and SRGAN's content network) and ship it in fp16."""
    from safetensors.torch import save_file

    from zoo.metrics.semantic import SegmenterConfig, toy_segmenter_path, train_toy_segmenter

    config = SegmenterConfig()
    start = time.perf_counter()
    net = train_toy_segmenter(config)
    path = output_dir / toy_segmenter_path(config).name
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()},
              str(path), metadata={"config": json.dumps(config.__dict__)})
    print(f"{path}: trained in {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.2f} MB", flush=True)
    return path


def remeasure(name: str, output_dir: Path, images: int) -> dict:
    """Measure a shipped file again and rewrite the metrics of its card (after the segmenter changed)."""
    import zoo
    from zoo.shipped_weights import model_card_markdown

    path = output_dir / f"{name}.json"
    card = json.loads(path.read_text())
    card["metrics"] = measure(zoo.load(output_dir / card["file"]), ENTRIES[name], images)
    card["metrics_protocol"] = METRICS_PROTOCOL.format(images=images)
    card["zoo_version"] = zoo.__version__  # the release the file ships in
    path.write_text(json.dumps(card, indent=2) + "\n")
    (output_dir / f"{name}.md").write_text(model_card_markdown(card))
    print(f"{name}: {card['metrics']}", flush=True)
    return card


def markdown_table(output_dir: Path) -> str:
    """The README's table of the shipped weights, from their cards."""
    lines = ["| name | task | file | measured on the toy world's test split | training | licence |",
             "|---|---|---|---|---|---|"]
    for name in ENTRIES:
        path = output_dir / f"{name}.json"
        if not path.is_file():
            continue
        card = json.loads(path.read_text())
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in card["metrics"].items())
        lines.append(f"| [`{name}`](zoo/pretrained/{name}.md) | {card['task']} | {card['size_bytes'] / 1e6:.2f} MB | "
                     f"{metrics} | {card['iterations']} it, {card['train_seconds'] / 60:.1f} min | BSD-3-Clause |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", action="append", choices=sorted(ENTRIES), help="a shipped entry (repeatable)")
    which.add_argument("--method", help="every shipped entry of this method")
    which.add_argument("--all", action="store_true", help="every shipped entry")
    which.add_argument("--list", action="store_true", help="list the entries and their configs")
    which.add_argument("--table", action="store_true", help="print the README's table of the shipped weights")
    which.add_argument("--segmenter", action="store_true",
                       help="train and ship the default toy-world segmenter the metrics use (before any --name)")
    parser.add_argument("--output", type=Path, default=REPO / "zoo" / "pretrained", help="where the files go")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "zoo_weights", help="training runs")
    parser.add_argument("--expected", type=Path, default=REPO / "tests" / "data" / "shipped_outputs",
                        help="expected outputs of the regression test ('' to skip)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the config's iterations (smoke runs)")
    parser.add_argument("--images", type=int, default=50, help="test images the card's metrics are measured on")
    parser.add_argument("--measure-only", action="store_true",
                        help="only measure the shipped files again and rewrite their cards' metrics (no training)")
    parser.add_argument("--expected-only", action="store_true",
                        help="only rewrite the regression test's expected outputs of the shipped files (no training)")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in ENTRIES.items():
            print(f"{name:28s} {entry.config:36s} {entry.task}")
        return 0
    if args.table:
        print(markdown_table(args.output))
        return 0
    if args.segmenter:
        write_segmenter(args.output)
        return 0
    names = list(ENTRIES) if args.all else args.name or [n for n, e in ENTRIES.items() if e.method == args.method]
    if not names:
        parser.error(f"no shipped entry of method {args.method!r}")
    expected = args.expected if str(args.expected) else None
    if args.measure_only:
        for name in names:
            remeasure(name, args.output, args.images)
        return 0
    if args.expected_only:
        import zoo

        for name in names:
            print(write_expected_outputs(name, zoo.load(args.output / f"{name}.safetensors"), args.expected))
        return 0
    print(describe_machine(), flush=True)
    for name in names:
        train(name, output_dir=args.output, work_dir=args.work_dir, max_steps=args.max_steps, images=args.images,
              expected_dir=expected)
    total = sum(p.stat().st_size for p in args.output.glob("*.safetensors"))
    print(f"shipped weights: {total / 1e6:.2f} MB in {args.output}", flush=True)
    if total > MAX_TOTAL_BYTES:
        print(f"over the {MAX_TOTAL_BYTES / 1e6:.0f} MB limit for all shipped weights", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
