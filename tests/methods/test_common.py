"""Checks every registered method must pass, run on its tiny config (``configs/tiny/<method>.yaml``).

The unregistered copy-me skeleton (``zoo/methods/_template.py``) runs them too, so a method copied from it starts
out meeting the contract.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model, tiny_config, trainable_methods
from zoo.data import PairedDataModule
from zoo.evaluate import EVALUATE_METRICS
from zoo.hub import save_bundle
from zoo.methods._template import TemplateTranslator
from zoo.trainer import ZooTrainer

#: Test id of the unregistered template in the parametrized checks.
TEMPLATE = "_template"
ALL_METHODS = [*zoo.list_models(), TEMPLATE]
METHODS = [*trainable_methods(), TEMPLATE]


def _build_model(name: str, **overrides):
    """The tiny model of a registered method (or of the template) and the image side of its tiny data."""
    if name == TEMPLATE:
        return TemplateTranslator(**{"ngf": 4, "ndf": 4, "generator": "resnet_1blocks", **overrides}), 32
    return build_tiny_model(name, **overrides)


def _build_datamodule(name: str):
    if name == TEMPLATE:
        return PairedDataModule(root=None, image_size=32, toy_length=4, toy_test_length=2, val_size=2)
    return build_tiny_datamodule(name)


def _load(name: str, path: Path) -> torch.nn.Module:
    """``zoo.load`` of a checkpoint or bundle written by method ``name``.

    The template is not registered: its bundles name their class (imported with ``trust_code``); its checkpoints,
    written by a plain ``Trainer.fit`` without the CLI's class path, load through Lightning.
    """
    if name != TEMPLATE:
        return zoo.load(str(path))
    if path.suffix == ".ckpt":
        return TemplateTranslator.load_from_checkpoint(path, map_location="cpu").eval()
    return zoo.load(str(path), trust_code=True)


def _inputs(model, size: int, direction: str = "a2b", batch: int = 2) -> torch.Tensor:
    return model.example_images(batch, size, direction, generator=torch.Generator().manual_seed(0))


def _translate(model, images: torch.Tensor, direction: str = "a2b", seed: int | None = None) -> torch.Tensor:
    """``model.translate``; exemplar-guided methods get the batch reversed as exemplars."""
    if model.requires_exemplar:
        return model.translate(images, exemplar=images.flip(0), direction=direction, seed=seed)
    return model.translate(images, direction=direction, seed=seed)


def _step_inputs(model, size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return model.example_inputs(2, size, generator=torch.Generator().manual_seed(seed))


def _trainer(tmp_path, **kwargs) -> ZooTrainer:
    defaults = dict(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_image_grid=False)
    return ZooTrainer(**{**defaults, **kwargs})


def test_every_method_has_a_tiny_config():
    for name in zoo.list_models():
        config = tiny_config(name)
        assert config["model"]["class_path"].endswith(type(zoo.create(name)).__name__)


#: What the paper-setting networks of each method accept: the strides of their encoders (pix2pix: the 256 U-Net).
PAPER_SIZE_MULTIPLES = {"bicubic": 1, "cut": 4, "cyclegan": 4, "decent": 4, "drit": 4, "lomit": 4, "munit": 4,
                        "pix2pix": 256, "pix2pixhd": 16, "srgan": 1, "srresnet": 1, "srunit": 4, "vsait": 4,
                        "instaformer": 1}  # one square size, which translate resizes any input to


@pytest.mark.parametrize("name", zoo.list_models())
def test_size_multiple_comes_from_the_networks(name):
    model = zoo.create(name)
    assert model.size_multiple == PAPER_SIZE_MULTIPLES[name]
    with pytest.raises(AttributeError):
        model.size_multiple = 8  # derived from the networks, never set by hand


@pytest.mark.parametrize("name", ALL_METHODS)
def test_declares_the_contract(name):
    model, _ = _build_model(name)
    assert model.directions in (("a2b",), ("a2b", "b2a"))
    assert isinstance(model.scale, int) and model.scale >= 1
    assert isinstance(model.size_multiple, int) and model.size_multiple >= 1
    assert isinstance(model.requires_exemplar, bool)
    assert isinstance(type(model).optimizer_steps_per_iteration, int)
    assert model.automatic_optimization is False
    for direction in model.directions:
        assert model.input_channels(direction) >= 1 and model.output_channels(direction) >= 1
    with pytest.raises(ValueError, match="direction"):
        model.input_channels("x2y")
    assert model.PAPER_METRICS and set(model.PAPER_METRICS) <= set(EVALUATE_METRICS)
    if "diversity" in model.PAPER_METRICS:  # diversity samples styles: only multimodal methods have them
        assert "num_styles" in inspect.signature(model.translate).parameters


@pytest.mark.parametrize("name", ALL_METHODS)
def test_translate_refuses_8_bit_model_space_and_nan_images_saying_how_to_convert(name):
    """The usual slips of a first notebook: uint8 tensors, 0-255 floats, [-1, 1] images, NaNs. Each used to run
    into a dtype error deep in a convolution or to translate garbage without a word."""
    model, size = _build_model(name)
    x = _inputs(model, size)
    x[..., 0, 0] = 0  # so that x * 2 - 1 reaches -1
    slips = {r"floating-point images in \[0, 1\], got torch.uint8: images.float\(\) / 255": (x * 255).to(torch.uint8),
             r"got values from 200 to 200; 8-bit values\? divide by 255": torch.full_like(x, 200.0),
             r"got values from -1 to .*; \[-1, 1\] images\? map them with \(images \+ 1\) / 2": x * 2 - 1,
             r"got values from nan to nan": torch.full_like(x, float("nan"))}
    for message, images in slips.items():
        with pytest.raises(ValueError, match=message):
            _translate(model, images)
    overshoot = x * 1.1 - 0.05  # within [-0.05, 1.05], as bicubic resampling of [0, 1] images can be
    assert _translate(model, overshoot).isfinite().all()


@pytest.mark.parametrize("name", ALL_METHODS)
def test_domains_with_different_channels_translate_and_train_or_are_refused_by_name(name):
    """Domain A with 1 channel and domain B with 3, set through the hyperparameters ``DOMAIN_CHANNELS`` names:
    ``translate`` maps between them in every direction and an iteration trains, or the constructor refuses in a
    ValueError naming both options. One name for both domains (a resize, LOMIT) keeps them equal."""
    model, size = _build_model(name)
    names = type(model).DOMAIN_CHANNELS
    if names[0] == names[1]:
        assert all(model.input_channels(d) == model.output_channels(d) for d in model.directions)
        return
    try:
        model, size = _build_model(name, **{names[0]: 1, names[1]: 3})
    except ValueError as refusal:
        assert all(option in str(refusal) for option in names), refusal
        return
    assert model.domain_channels == (1, 3)
    for direction in model.directions:
        x = _inputs(model, size, direction)
        assert x.shape[1] == (1 if direction == "a2b" else 3)
        assert _translate(model, x, direction, seed=0).shape[1] == (3 if direction == "a2b" else 1)
    if model.trainable:
        optimizers, _ = model.configure_optimizers()
        out = model.train().optimization_step(*_step_inputs(model, size), *optimizers)
        assert all(torch.isfinite(v).all() for v in out.losses.values())


@pytest.mark.parametrize("name", ALL_METHODS)
def test_translate_shapes_range_and_finiteness(name):
    model, size = _build_model(name)
    for direction in model.directions:
        x = _inputs(model, size, direction)
        y = _translate(model, x, direction, seed=0)
        out_size = size * model.scale
        assert y.shape == (2, model.output_channels(direction), out_size, out_size)
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        if direction == "a2b" and not model.requires_exemplar:
            assert model(x * 2 - 1).shape == y.shape


@pytest.mark.parametrize("name", METHODS)
def test_one_iteration_updates_every_optimized_parameter_and_nothing_else(name):
    model, size = _build_model(name)
    model.train()
    optimizers, _ = model.configure_optimizers()
    optimized = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {n: b.detach().clone() for n, b in model.named_buffers()}
    out = model.optimization_step(*_step_inputs(model, size), *optimizers)
    assert out.losses and all(torch.isfinite(v).all() for v in out.losses.values())
    for n, p in model.named_parameters():
        if id(p) in optimized:
            assert not torch.equal(p, before[n]), f"{name}: {n} was not updated"
        else:
            assert torch.equal(p, before[n]), f"{name}: {n} is in no optimizer but changed"
    assert frozen.keys() == {n for n, _ in model.named_buffers()}


@pytest.mark.parametrize("name", METHODS)
def test_fast_dev_run_on_the_embedded_data(name, tmp_path):
    model, _ = _build_model(name)
    trainer = _trainer(tmp_path, fast_dev_run=2)
    trainer.fit(model, datamodule=_build_datamodule(name))
    assert trainer.iterations == 2


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_and_bundle_round_trips_give_identical_translations(name, tmp_path):
    model, size = _build_model(name)
    trainer = _trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=_build_datamodule(name))
    ckpt = trainer.run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    x = _inputs(model, size)
    expected = _translate(model, x, seed=1)
    from_ckpt = _load(name, ckpt)
    assert type(from_ckpt) is type(model) and not from_ckpt.training
    torch.testing.assert_close(_translate(from_ckpt, x, seed=1), expected, rtol=0, atol=0)
    bundle = save_bundle(model, tmp_path / "bundle")
    torch.testing.assert_close(_translate(_load(name, bundle), x, seed=1), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_seeded_construction_and_training_are_deterministic(name):
    def run():
        torch.manual_seed(0)
        model, size = _build_model(name)
        model.optimization_step(*_step_inputs(model, size), *model.configure_optimizers()[0])
        return model

    first, second = run(), run()
    for (n, p1), p2 in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(p1, p2), f"{name}: {n} differs between identical seeded runs"


@pytest.mark.parametrize("name", METHODS)
def test_ema_generator_is_used_by_translate_and_tracks_training(name):
    model, size = _build_model(name, ema_decay=0.5)
    live = copy.deepcopy(model.generator_for("a2b", use_ema=False).state_dict())
    model.optimization_step(*_step_inputs(model, size), *model.configure_optimizers()[0])
    ema_net, live_net = model.generator_for("a2b"), model.generator_for("a2b", use_ema=False)
    assert ema_net is not live_net
    # first update copies the weights that existed after the step; they must differ from the initial ones
    changed = [k for k, v in ema_net.state_dict().items() if v.is_floating_point() and not torch.equal(v, live[k])]
    assert changed
    assert not any(p.requires_grad for p in ema_net.parameters())


GAN_METHODS = [name for name in METHODS if type(_build_model(name)[0]).IMAGE_DISCRIMINATORS]


@pytest.mark.parametrize("name", GAN_METHODS)
def test_diff_augment_reaches_every_image_discriminator_in_training_only(name, monkeypatch, tmp_path):
    """``diff_augment`` augments what each image discriminator sees while training, and trains; eval is untouched."""
    import zoo.nets.diff_augment as diff_augment_module

    model, size = _build_model(name, diff_augment="translation,cutout")
    assert model.hparams.diff_augment == "translation,cutout"
    seen: list[int] = []
    augment = diff_augment_module.diff_augment
    monkeypatch.setattr(diff_augment_module, "diff_augment",
                        lambda images, policy, *args: seen.append(images.shape[0]) or augment(images, policy, *args))
    for attribute in type(model).IMAGE_DISCRIMINATORS:
        discriminator = getattr(model, attribute)
        channels = next(m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        images = torch.rand(2, channels, size * model.scale, size * model.scale)  # what it judges: outputs
        discriminator.eval()
        with torch.no_grad():
            discriminator(images)
        assert seen == [], f"{attribute} augmented in eval mode"
        discriminator.train()
        with torch.no_grad():
            discriminator(images)
        assert seen == [2], f"{attribute} not augmented in training mode"
        seen.clear()
    trainer = _trainer(tmp_path, max_steps=1, enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model, datamodule=_build_datamodule(name))
    assert seen, "no discriminator input was augmented during training"


def test_diff_augment_is_refused_without_an_image_discriminator():
    with pytest.raises(ValueError, match="diff_augment must be null"):
        zoo.create("srresnet").use_diff_augment("color")


def test_model_space_inputs_are_checked_against_their_own_range():
    """Model-space APIs (MUNIT's ``encode``) take [-1, 1]: those images pass, 8-bit values and NaN do not."""
    from zoo.methods._common import check_images

    images = torch.rand(2, 3, 8, 8) * 2 - 1
    check_images(images, 3, 4, value_range=(-1.0, 1.0))
    with pytest.raises(ValueError, match=r"expected images in \[-1, 1\], got values from .* to 2\d\d; 8-bit"):
        check_images(images * 0 + 200, 3, 4, value_range=(-1.0, 1.0))
    with pytest.raises(ValueError, match="got values from nan"):
        check_images(images * float("nan"), 3, 4, value_range=(-1.0, 1.0))
    munit, size = _build_model("munit")
    with pytest.raises(ValueError, match=r"images in \[-1, 1\]"):
        munit.encode(torch.full((1, 3, size, size), 128.0), domain="a")


def test_a_method_without_its_channel_hyperparameters_is_told_to_set_domain_channels():
    from zoo.methods.base import TranslationMethod

    class Untyped(TranslationMethod):
        def __init__(self, *, channels: int = 3) -> None:
            super().__init__()
            self.save_hyperparameters()

    with pytest.raises(NotImplementedError, match="Untyped has no input_nc or output_nc hyperparameter: set "
                                                  "DOMAIN_CHANNELS"):
        _ = Untyped().domain_channels

    class Named(Untyped):
        DOMAIN_CHANNELS = ("channels", "channels")

    assert Named(channels=4).domain_channels == (4, 4)
