"""TranslationMetrics gives the values of the functions it is built on: the Fréchet and kernel distances of the
features its extractors produce, PSNR/SSIM of 8-bit images, the mean LPIPS and the semantic consistency; it says what
is missing, parses metric names with clear errors and forgets everything on reset. translate_for_metrics turns a
data-module batch into the metrics' inputs in either direction. Every network is tiny and random."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from tests.metrics.test_features import TINY_VIT
from zoo.data import PairedDataModule, UnpairedDataModule
from zoo.methods import CycleGAN
from zoo.metrics import SemanticConsistency, psnr, quantize, ssim
from zoo.metrics.distribution import frechet_distance, kernel_inception_distance
from zoo.metrics.lpips import LPIPS, MeanLPIPS
from zoo.metrics.translation import METRIC_NAMES, TranslationMetrics, parse_metric_names, translate_for_metrics
from zoo.nets.fid_inception import FIDInceptionV3
from zoo.utils.random_weights import spread_random_state_dict

NUM_CLASSES = 3
DINOV2_OPTIONS = {**TINY_VIT, "image_size": 56}


def _images(seed: int, batch: int = 3, size: int = 32) -> Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(spread_random_state_dict(FIDInceptionV3(), seed=1), path)
    return path


def _colour_segmenter(images: Tensor) -> Tensor:
    """Logits of a 3-class segmenter: the class of a pixel is its strongest colour channel."""
    return images * 10


def test_distribution_metrics_equal_the_functions_on_the_extracted_features(inception_file):
    metrics = TranslationMetrics("fid,kid,fd_dinov2", resize="legacy-pytorch", inception_weights=str(inception_file),
                                 dinov2_weights=None, dinov2_options=DINOV2_OPTIONS, kid_subsets=5, kid_subset_size=3)
    batches = [(_images(1, batch=2), _images(2, batch=2)), (_images(3, batch=2), _images(4, batch=2) * 0.5)]
    for real, fake in batches:
        metrics.update(fake, real=real)
    values = metrics.compute()
    assert set(values) == {"fid", "kid", "kid_std", "fd_dinov2"} and metrics.missing() == {}
    assert metrics.sample_counts() == {"real": 4, "fake": 4, "pairs": 0, "labelled": 0}

    with torch.no_grad():
        for name, extractor in (("fid", metrics.inception.extractor), ("fd_dinov2", metrics.dinov2.extractor)):
            real = torch.cat([extractor(real) for real, _ in batches])
            fake = torch.cat([extractor(fake) for _, fake in batches])
            assert values[name] == pytest.approx(frechet_distance(real, fake), rel=1e-9)
            if name == "fid":
                assert values["fid"] > 1e-3  # the random network still tells the two sets apart
                kid = kernel_inception_distance(real, fake, subsets=5, subset_size=3,
                                                generator=torch.Generator().manual_seed(0))
                assert (values["kid"], values["kid_std"]) == pytest.approx(kid, rel=1e-9)
    protocol = metrics.protocol()
    assert protocol["inception"]["resize"] == "legacy-pytorch" and protocol["kid"]["subsets"] == 5
    assert protocol["dinov2"]["input_size"] == 56

    metrics.reset()
    assert metrics.compute() == {} and set(metrics.missing()) == {"fid", "kid", "fd_dinov2"}
    assert metrics.sample_counts() == {"real": 0, "fake": 0, "pairs": 0, "labelled": 0}
    same = _images(5, batch=2)
    metrics.update(same, real=same)
    against_itself = metrics.compute()
    assert against_itself["fid"] == pytest.approx(0.0, abs=1e-6 * values["fid"])
    assert against_itself["fd_dinov2"] == pytest.approx(0.0, abs=1e-6)


def test_paired_metrics_equal_psnr_ssim_of_8_bit_images_and_mean_lpips():
    network = LPIPS("alex", backbone_weights=None, linear_weights=None)
    metrics = TranslationMetrics("lpips,psnr,ssim", lpips_net=network)
    reference = MeanLPIPS(network)
    pairs = [(_images(6), _images(7)), (_images(8, batch=2), _images(9, batch=2))]
    per_image_psnr, per_image_ssim = [], []
    for fake, target in pairs:
        metrics.update(fake, target=target)
        reference.update(fake, target)
        pred, truth = quantize(fake, (0.0, 1.0)), quantize(target, (0.0, 1.0))
        per_image_psnr.append(psnr(pred, truth))
        per_image_ssim.append(ssim(pred, truth))
    values = metrics.compute()
    assert values["psnr"] == pytest.approx(float(torch.cat(per_image_psnr).mean()), rel=1e-6)
    assert values["ssim"] == pytest.approx(float(torch.cat(per_image_ssim).mean()), rel=1e-6)
    assert values["lpips"] == pytest.approx(float(reference.compute()), rel=1e-6) and values["lpips"] > 0
    assert metrics.sample_counts()["pairs"] == 5
    with pytest.raises(ValueError, match="must have the shape of the translations"):
        metrics.update(_images(10), target=_images(11, size=16))


def test_miou_equals_semantic_consistency():
    metrics = TranslationMetrics("miou", segmenter=_colour_segmenter, num_classes=NUM_CLASSES)
    reference = SemanticConsistency(_colour_segmenter, num_classes=NUM_CLASSES)
    generator = torch.Generator().manual_seed(12)
    for seed in (13, 14):
        fake = _images(seed)
        labels = torch.randint(0, NUM_CLASSES, (3, 32, 32), generator=generator)
        labels[:, :16] = fake[:, :, :16].argmax(1)  # half the pixels agree with the segmenter
        metrics.update(fake, labels=labels)
        reference.update(fake, labels)
    miou = metrics.compute()["miou"]
    assert miou == pytest.approx(reference.compute(), rel=1e-9) and 0.4 < miou < 1
    assert metrics.protocol()["miou"]["num_classes"] == NUM_CLASSES

    metrics.reset()
    assert metrics.compute() == {} and metrics.missing() == {"miou": "class labels of the source images"}
    assert int(metrics.semantic.confusion.sum()) == 0


def test_missing_names_the_metrics_without_inputs():
    metrics = TranslationMetrics("fd_dinov2,psnr,miou", dinov2_weights=None, dinov2_options=DINOV2_OPTIONS,
                                 segmenter=_colour_segmenter, num_classes=NUM_CLASSES)
    assert metrics.needs_real and metrics.needs_target and metrics.needs_labels
    metrics.update(_images(15))
    assert metrics.compute() == {}
    assert metrics.missing() == {"fd_dinov2": "real images of the target domain", "psnr": "aligned target images",
                                 "miou": "class labels of the source images"}
    metrics.update(_images(16), target=_images(17))
    assert set(metrics.compute()) == {"psnr"} and set(metrics.missing()) == {"fd_dinov2", "miou"}
    lpips_only = TranslationMetrics("lpips", lpips_net=LPIPS("alex", backbone_weights=None, linear_weights=None))
    assert not lpips_only.needs_real and lpips_only.needs_target and not lpips_only.needs_labels


def test_parse_metric_names():
    assert parse_metric_names(" FID, kid ,fid,") == ("fid", "kid")
    assert parse_metric_names(["psnr", "SSIM"]) == ("psnr", "ssim")
    assert parse_metric_names(",".join(METRIC_NAMES)) == METRIC_NAMES
    with pytest.raises(ValueError, match=r"unknown metric 'fdd'; choose from fid, kid, fd_dinov2, lpips"):
        parse_metric_names("fid,fdd")
    with pytest.raises(ValueError, match=r"unknown metrics 'is', 'prd'"):
        parse_metric_names(["is", "prd"])
    with pytest.raises(ValueError, match="no metric named; choose from"):
        parse_metric_names(" , ")
    with pytest.raises(ValueError, match=r"unknown metric 'fid'; choose from psnr, ssim$"):
        parse_metric_names("fid", allowed=("psnr", "ssim"))
    with pytest.raises(ValueError, match="unknown metric 'is'"):
        TranslationMetrics("is")


@pytest.fixture(scope="module")
def cyclegan() -> CycleGAN:
    torch.manual_seed(0)
    return CycleGAN(ngf=4, ndf=4, generator="resnet_2blocks").eval()


def test_translate_for_metrics_on_an_unpaired_toy_batch(cyclegan):
    datamodule = UnpairedDataModule(root=None, image_size=32, toy_length=4, batch_size=2, val_size=2)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    a2b = translate_for_metrics(cyclegan, batch, direction="a2b")
    assert a2b.fake.shape == (2, 3, 32, 32) and 0 <= a2b.fake.min() and a2b.fake.max() <= 1
    assert torch.allclose(a2b.fake, cyclegan.translate((batch["real_a"] + 1) / 2, direction="a2b", seed=0))
    assert torch.equal(a2b.real, (batch["real_b"] + 1) / 2) and a2b.target is None
    assert torch.equal(a2b.labels, batch["label_a"])

    b2a = translate_for_metrics(cyclegan, batch, direction="b2a")
    assert torch.allclose(b2a.fake, cyclegan.translate((batch["real_b"] + 1) / 2, direction="b2a", seed=0))
    assert torch.equal(b2a.real, (batch["real_a"] + 1) / 2)
    assert b2a.target is None and b2a.labels is None  # the toy world labels the A side only


def test_translate_for_metrics_on_a_paired_toy_batch(cyclegan):
    datamodule = PairedDataModule(root=None, image_size=32, toy_length=4, batch_size=2, val_size=2)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    inputs = translate_for_metrics(cyclegan, batch, direction="a2b", paired=datamodule.paired)
    assert datamodule.paired and inputs.fake.shape == (2, 3, 32, 32)
    assert torch.equal(inputs.target, (batch["real_b"] + 1) / 2) and torch.equal(inputs.real, inputs.target)
    assert torch.equal(inputs.labels, batch["label"])
