"""How closely zoo's FID, KID and LPIPS agree with the reference packages, on one set of images.

For each protocol, the same images go through zoo and the package that defines the protocol, with the same weights:

- ``legacy-pytorch``: zoo's :class:`~zoo.metrics.features.InceptionFeatures` against pytorch-fid's ``InceptionV3([3])``
  (FID with pytorch-fid's ``calculate_frechet_distance``);
- ``legacy-tensorflow``: against torch-fidelity's ``FeatureExtractorInceptionV3`` (FID and KID with its
  ``fid_statistics_to_metric`` and ``kid_features_to_metric``);
- ``clean``: zoo's :func:`~zoo.metrics.features.resize_clean` against clean-fid's ``make_resizer("PIL", False,
  "bicubic", (299, 299))``, the network then fed as clean-fid feeds its own (FID and KID with clean-fid's
  ``frechet_distance`` and ``kernel_distance``);
- LPIPS (AlexNet and VGG-16) against the ``lpips`` package, on aligned pairs.

KID uses subsets of all the images (``subset_size = N``), so every package's random draws give the same value.
Prints the largest feature difference, the metric values and their differences, and the machine.

    python bench/metrics_agreement.py                         # 200 toy-world renders of 256 px: photo vs sim
    python bench/metrics_agreement.py --num-images 50 --lpips-pairs 10
    python bench/metrics_agreement.py --real DIR --fake DIR   # PNG/JPEG files (the first --num-images of each)
    python bench/metrics_agreement.py --inception-weights pt_inception-2015-12-05-6726825d.pth

The Inception weights are ``--inception-weights``, else the published file when zoo finds it offline
(``$ZOO_WEIGHTS_DIR`` or the zoo cache), else one random state dict shared by zoo and the packages (the output says
which). LPIPS uses the linear layers the ``lpips`` wheel ships and torchvision's ImageNet backbones when they are in
torch's hub cache, else random backbones shared by both sides.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import describe_machine
from torch import Tensor


def _load_folder(folder: Path, count: int, size: int) -> Tensor:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})
    if not files:
        raise SystemExit(f"no images in {folder}")
    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
              for p in files[:count]]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _images(args: argparse.Namespace) -> tuple[Tensor, Tensor, str]:
    """``(real, fake)`` uint8 ``(N, 3, S, S)`` and a description."""
    if args.real or args.fake:
        if not (args.real and args.fake):
            raise SystemExit("give both --real and --fake")
        real, fake = _load_folder(args.real, args.num_images, args.size), _load_folder(args.fake, args.num_images,
                                                                                          args.size)
        return real, fake, f"{len(real)} images of {args.real} vs {len(fake)} of {args.fake}, at {args.size} px"
    from zoo.metrics import toy_eval_set
    from zoo.metrics.features import to_uint8

    scenes = toy_eval_set(args.num_images, args.size, split="test")
    other = toy_eval_set(args.num_images, args.size, split="test", seed=1)
    return (to_uint8(scenes["photo"]), to_uint8(other["sim"]),
            f"toy world, test split, {args.num_images} photo-like renders vs {args.num_images} sim renders of other "
            f"scenes, {args.size} px")


def _inception_state(path: Path | None) -> tuple[dict[str, Tensor], str]:
    from zoo.nets.fid_inception import FID_INCEPTION_WEIGHTS
    from zoo.weights import WeightsUnavailableError, resolve_weights

    if path is None:
        os.environ["ZOO_OFFLINE"] = "1"  # look, never download
        try:
            path = resolve_weights(FID_INCEPTION_WEIGHTS, progress=False)
        except WeightsUnavailableError:
            path = None
    if path is not None:
        return torch.load(path, map_location="cpu", weights_only=True), f"{path} (published weights)"
    from zoo.nets.fid_inception import FIDInceptionV3
    from zoo.utils.random_weights import spread_random_state_dict

    note = ("RANDOM: one random state dict shared by zoo and the packages (the published file was not found; the "
            "values are not real FIDs, their agreement is what counts)")
    return spread_random_state_dict(FIDInceptionV3()), note


def _batched(fn, images: Tensor, batch_size: int) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(chunk) for chunk in images.split(batch_size)]).double()


def _report_features(label: str, ours: Tensor, theirs: Tensor) -> None:
    difference = (ours - theirs).abs().max().item()
    print(f"  {label}: max |feature difference| {difference:.3g} (features up to {theirs.abs().max().item():.3g})")


def _report_value(name: str, ours: float, theirs: float, package: str) -> None:
    print(f"  {name:4} zoo {ours:.10g}  {package} {theirs:.10g}  |difference| {abs(ours - theirs):.3g} "
          f"(relative {abs(ours - theirs) / max(abs(theirs), 1e-300):.2g})")


def _inception_agreement(real: Tensor, fake: Tensor, state: dict[str, Tensor], batch_size: int) -> None:
    from cleanfid import fid as clean_fid
    from cleanfid.resize import make_resizer
    from pytorch_fid import fid_score
    from pytorch_fid import inception as pytorch_fid_inception
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric

    from zoo.metrics.distribution import frechet_distance, kernel_inception_distance
    from zoo.metrics.features import InceptionFeatures, resize_clean
    from zoo.nets.fid_inception import FIDInceptionV3

    n = min(len(real), len(fake))

    def zoo_values(real_features: Tensor, fake_features: Tensor) -> tuple[float, float]:
        kid, _ = kernel_inception_distance(real_features, fake_features, subsets=5, subset_size=n)
        return frechet_distance(real_features, fake_features), kid

    def stats(features: Tensor) -> tuple[np.ndarray, np.ndarray]:
        array = features.numpy()
        return array.mean(axis=0), np.cov(array, rowvar=False)

    print("\nlegacy-pytorch: zoo vs pytorch-fid InceptionV3([3])")
    pytorch_fid_inception.load_state_dict_from_url = lambda *a, **k: state
    network = pytorch_fid_inception.InceptionV3([3]).eval()
    zoo = InceptionFeatures(state, resize="legacy-pytorch")
    ours = [_batched(zoo, images, batch_size) for images in (real, fake)]
    theirs = [_batched(lambda x: network(x.float() / 255)[0].flatten(1), images, batch_size) for images in (real, fake)]
    _report_features("real", ours[0], theirs[0])
    _report_features("fake", ours[1], theirs[1])
    start = time.perf_counter()
    reference = fid_score.calculate_frechet_distance(*stats(theirs[0]), *stats(theirs[1]))
    print(f"  (pytorch-fid's FID took {time.perf_counter() - start:.1f} s)")
    _report_value("FID", zoo_values(*ours)[0], float(reference), "pytorch-fid")

    print("\nlegacy-tensorflow: zoo vs torch-fidelity FeatureExtractorInceptionV3 (inception-v3-compat)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inception.pth"
        torch.save(state, path)
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                              feature_extractor_weights_path=str(path))
    zoo = InceptionFeatures(state, resize="legacy-tensorflow")
    ours = [_batched(zoo, images, batch_size) for images in (real, fake)]
    theirs = [_batched(lambda x: network(x)[0], images, batch_size) for images in (real, fake)]
    _report_features("real", ours[0], theirs[0])
    _report_features("fake", ours[1], theirs[1])
    fid, kid = zoo_values(*ours)
    theirs32 = [features.float() for features in theirs]  # torch-fidelity's own dtype
    reference_fid = fid_statistics_to_metric(*map(fid_features_to_statistics, theirs32), verbose=False)
    reference_kid = kid_features_to_metric(*theirs32, kid_subsets=5, kid_subset_size=n, verbose=False)
    _report_value("FID", fid, reference_fid["frechet_inception_distance"], "torch-fidelity")
    _report_value("KID", kid, reference_kid["kernel_inception_distance_mean"], "torch-fidelity")

    print("\nclean: zoo's resize_clean and scaling vs clean-fid's make_resizer('PIL', False, 'bicubic', (299, 299))")
    resizer = make_resizer("PIL", False, "bicubic", (299, 299))
    plain = FIDInceptionV3(state, resize_input=False, normalize_input=False)

    def clean_fid_features(images: Tensor) -> Tensor:
        resized = np.stack([resizer(image) for image in images.permute(0, 2, 3, 1).numpy()])
        return plain((torch.from_numpy(resized).permute(0, 3, 1, 2) - 128) / 128)

    zoo = InceptionFeatures(state, resize="clean")
    resize_difference = max((resize_clean(chunk) - torch.from_numpy(np.stack(
        [resizer(image) for image in chunk.permute(0, 2, 3, 1).numpy()])).permute(0, 3, 1, 2)).abs().max().item()
        for chunk in (*real.split(batch_size), *fake.split(batch_size)))
    print(f"  resize: max |pixel difference| {resize_difference:.3g} (values in [0, 255])")
    ours = [_batched(zoo, images, batch_size) for images in (real, fake)]
    theirs = [_batched(clean_fid_features, images, batch_size) for images in (real, fake)]
    _report_features("real", ours[0], theirs[0])
    _report_features("fake", ours[1], theirs[1])
    fid, kid = zoo_values(*ours)
    _report_value("FID", fid, float(clean_fid.frechet_distance(*stats(theirs[0]), *stats(theirs[1]))), "clean-fid")
    reference_kid = clean_fid.kernel_distance(theirs[0].numpy(), theirs[1].numpy(), num_subsets=5, max_subset_size=n)
    _report_value("KID", kid, float(reference_kid), "clean-fid")


def _torchvision_backbone(net: str) -> Path | None:
    name = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}[net]
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def _lpips_agreement(real: Tensor, fake: Tensor, pairs: int, batch_size: int) -> None:
    import warnings

    import lpips

    from zoo.metrics.lpips import LPIPS, convert_lpips_package_state_dict

    x, y = real[:pairs].float() / 255, fake[:pairs].float() / 255
    for net in ("alex", "vgg"):
        backbone = _torchvision_backbone(net)
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = lpips.LPIPS(net=net, pretrained=True, pnet_rand=backbone is None, verbose=False).eval()
        ours = LPIPS(net, backbone_weights=None, linear_weights=None)
        ours.load_state_dict(convert_lpips_package_state_dict(reference.state_dict()), strict=True)
        where = f"torchvision ImageNet backbone ({backbone})" if backbone else "RANDOM backbone shared by both sides"
        print(f"\nLPIPS {net}: zoo vs lpips {lpips.__version__ if hasattr(lpips, '__version__') else ''}"
              f"; published v0.1 linear layers, {where}; {len(x)} pairs")
        with torch.no_grad():
            got = torch.cat([ours(a, b) for a, b in zip(x.split(batch_size), y.split(batch_size), strict=True)])
            expected = torch.cat([reference(a * 2 - 1, b * 2 - 1).flatten()
                                  for a, b in zip(x.split(batch_size), y.split(batch_size), strict=True)])
        print(f"  mean zoo {got.mean().item():.8g}  lpips {expected.mean().item():.8g}  "
              f"max |difference| per pair {(got - expected).abs().max().item():.3g}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-images", type=int, default=200, help="images per set (default 200)")
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--real", type=Path, default=None, help="folder of real images")
    parser.add_argument("--fake", type=Path, default=None, help="folder of generated images")
    parser.add_argument("--inception-weights", type=Path, default=None, help="pytorch-fid's Inception file")
    parser.add_argument("--lpips-pairs", type=int, default=50, help="image pairs for LPIPS (default 50)")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    real, fake, description = _images(args)
    state, weights = _inception_state(args.inception_weights)
    print(f"machine: {describe_machine()}")
    print(f"images: {description}")
    print(f"Inception weights: {weights}")
    _inception_agreement(real, fake, state, args.batch_size)
    _lpips_agreement(real, fake, min(args.lpips_pairs, len(real), len(fake)), args.batch_size)
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
