"""InstaFormer-specific behaviour: boxes and padded boxes, the no-box inference path, styles, sizes and shape errors,
the official AdaIN assignment, the losses of one iteration, resumption with every optimizer's state (the MLP heads'
included), and the official configuration and checkpoint import."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

import zoo
from zoo.methods.instaformer import OFFICIAL_MODULES, InstaFormer, resize_images
from zoo.nets.instaformer import (
    AdaINTransformer,
    TransformerAggregator,
    assign_adain_params,
    extract_box_features,
    pad_boxes,
    split_adain_params,
)
from zoo.trainer import ZooTrainer

TINY: dict[str, Any] = dict(ngf=4, img_size=16, embed_c=16, depth=2, heads=2, mlp_dim=32, adain_dim=16, ndf=4,
                            nc_patch=16, nc_inst=16, num_patches=32, num_box=3, channels_last=False)
SIZE = 64  # 4 * img_size


def _model(**overrides: Any) -> InstaFormer:
    torch.manual_seed(0)
    return InstaFormer(**{**TINY, **overrides}).train()


def _images(batch: int = 2, size: int | tuple[int, int] = SIZE, seed: int = 1) -> Tensor:
    height, width = (size, size) if isinstance(size, int) else size
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


#: two images: two boxes (one overlapping the other) and one padded row; one box and two padded rows
BOXES = torch.tensor([[[0, 0.11, 0.13, 0.52, 0.61], [1, 0.43, 0.27, 0.91, 0.88], [-1, -1, -1, -1, -1]],
                      [[2, 0.06, 0.31, 0.47, 0.97], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]]])


# ------------------------------------------------------------------------------------------------ inference


def test_translate_without_and_with_boxes():
    model = _model().eval()
    x = _images()
    plain = model.translate(x, seed=0)
    assert plain.shape == x.shape and 0 <= plain.min() and plain.max() <= 1
    torch.testing.assert_close(model.translate(x, seed=0), plain, rtol=0, atol=0)  # seeded styles
    assert not torch.equal(model.translate(x, seed=1), plain)
    boxed = model.translate(x, seed=0, boxes=BOXES)
    assert boxed.shape == x.shape and not torch.equal(boxed, plain)  # box tokens take part in attention and AdaIN
    # shorter box lists are padded with -1 rows to num_box
    torch.testing.assert_close(model.translate(x, seed=0, boxes=BOXES[:, :2]), boxed, rtol=0, atol=0)
    # padded boxes still become tokens (official): all-padded boxes are not the no-box path
    padded = model.translate(x, seed=0, boxes=torch.full((2, 3, 5), -1.0))
    assert not torch.equal(padded, plain)


def test_translate_any_size_resizes_to_the_networks_side_and_back():
    model = _model().eval()
    x = _images(size=(40, 72))
    y = model.translate(x, seed=0)
    assert y.shape == x.shape and torch.isfinite(y).all()
    expected = resize_images(model.translate(resize_images(x, SIZE), seed=0), (40, 72))
    torch.testing.assert_close(y, expected.clamp(0, 1), atol=1e-6, rtol=0)
    assert model.size_multiple == 1 and model.image_size == SIZE


def test_styles_given_and_from_reference_images():
    model = _model().eval()
    x = _images()
    codes = torch.randn(2, 8)
    given = model.translate(x, style=codes)
    torch.testing.assert_close(model.translate(x, style=codes[:, :, None, None]), given, rtol=0, atol=0)
    one = model.translate(x, style=codes[0])  # one code shared by the batch
    torch.testing.assert_close(one[0], given[0], rtol=0, atol=1e-6)
    reference = _images(seed=3)
    with torch.no_grad():
        own = model.generator.style_encoder(reference * 2 - 1)
    torch.testing.assert_close(model.translate(x, reference=reference), model.translate(x, style=own), rtol=0,
                               atol=1e-6)
    assert model.requires_exemplar is False and model.style_dim == 8


def test_translate_and_boxes_reject_bad_shapes():
    model = _model().eval()
    x = _images()
    with pytest.raises(ValueError, match="channels"):
        model.translate(torch.rand(2, 1, SIZE, SIZE))
    with pytest.raises(ValueError, match="boxes must be"):
        model.translate(x, boxes=torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="at most num_box=3"):
        model.translate(x, boxes=torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match="style codes"):
        model.translate(x, style=torch.randn(3, 8))
    with pytest.raises(ValueError, match="either style codes or reference"):
        model.translate(x, style=torch.randn(2, 8), reference=x)
    with pytest.raises(ValueError, match="direction"):
        model.translate(x, direction="b2a")
    with pytest.raises(ValueError, match="16x16 content features"):
        model.generator.transformer.tokens(torch.zeros(2, 16, 8, 16))
    with pytest.raises(ValueError, match="multiple of 8"):
        TransformerAggregator(img_size=12, embed_c=16, feat_c=16)
    with pytest.raises(ValueError, match="input_nc"):
        InstaFormer(**{**TINY, "output_nc": 1})


def test_forward_is_model_space_translation():
    model = _model().eval()
    x = _images() * 2 - 1
    style = torch.randn(2, 8, 1, 1)
    with torch.no_grad():
        y = model(x, style)
        expected = model.generator(x, style)
    torch.testing.assert_close(y, expected, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ networks


def test_every_adain_layer_gets_the_same_parameters_at_the_official_width():
    transformer = AdaINTransformer(dim=4, depth=2, heads=1, dim_head=4, mlp_dim=8)
    params = torch.randn(2, 8)
    assign_adain_params(params, transformer)
    for attention, feed_forward in transformer.layers:
        for block in (attention, feed_forward):
            torch.testing.assert_close(block.norm.bias, params[:, :4].reshape(-1))  # mean
            torch.testing.assert_close(block.norm.weight, params[:, 4:].reshape(-1))  # std
    # wider: consecutive chunks, the last one repeating once the output is used up
    wide = torch.randn(2, 24)
    chunks = [wide[:, i * 8:(i + 1) * 8] for i in (0, 1, 2, 2)]
    for (weight, bias), chunk in zip(split_adain_params(wide, transformer), chunks, strict=True):
        torch.testing.assert_close(weight, chunk[:, 4:].reshape(-1))
        torch.testing.assert_close(bias, chunk[:, :4].reshape(-1))
    assign_adain_params(None, transformer)
    with pytest.raises(RuntimeError, match="assign_adain_params"):
        transformer(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="cannot feed"):
        split_adain_params(torch.randn(2, 6), transformer)


def test_box_features_of_padded_rows_are_zero_without_gradient():
    features = torch.randn(2, 4, 16, 16, requires_grad=True)
    out = extract_box_features(features, BOXES)
    assert out.shape == (6, 4, 8, 8)
    assert torch.equal(out[[2, 4, 5]], torch.zeros(3, 4, 8, 8)) and out[0].abs().sum() > 0
    out[2].sum().backward()
    assert torch.equal(features.grad, torch.zeros_like(features))
    assert torch.equal(pad_boxes(None, 2, 3, like=features), torch.full((2, 3, 5), -1.0))


# ------------------------------------------------------------------------------------------------ training


def test_one_iteration_losses_and_padded_boxes():
    model = _model()
    optimizers = model.configure_optimizers()[0]
    real_a, real_b, box_a, box_b = model.example_inputs(2, SIZE, generator=torch.Generator().manual_seed(0))
    assert box_a.shape == (2, 3, 5) and (box_a[:, 0, 0] != -1).all()
    out = model.optimization_step(real_a, real_b, box_a, box_b, *optimizers)
    assert set(out.losses) == {"d_fake", "d_real", "g_gan", "g_recon", "g_style", "g_nce", "g_inst_nce", "g_total"}
    assert out.losses["g_inst_nce"] > 0
    assert out.images["fake_box"].shape == (6, 3, 32, 32) and out.images["style_b"].shape == (2, 8, 1, 1)
    official = model.official_losses(out.losses)
    torch.testing.assert_close(official["total_D_loss"], 0.5 * (official["D_fake_loss"] + official["D_real_loss"]))
    # no boxes: all padded, instance NCE 0 and the instance head untouched (no gradient, Adam skips it)
    head = {k: v.clone() for k, v in model.mlp_head_inst.state_dict().items()}
    out = model.optimization_step(real_a, real_b, None, None, *optimizers)
    assert out.losses["g_inst_nce"] == 0
    assert all(torch.equal(v, head[k]) for k, v in model.mlp_head_inst.state_dict().items())


def test_zero_weights_skip_their_terms_and_gan_modes():
    model = _model(w_nce=0.0, w_instance_nce=0.0, w_style=0.0, gan_mode="nonsaturating")
    out = model.optimization_step(*model.example_inputs(2, SIZE), *model.configure_optimizers()[0])
    assert set(out.losses) == {"d_fake", "d_real", "g_gan", "g_recon", "g_total"}
    assert all(torch.isfinite(v) for v in out.losses.values())


def test_iterations_equal_the_official_call_sequence():
    """zoo's step gives the losses of the call-by-call re-creation of the official ``train.py`` iteration in
    ``bench/official_loops.py`` (which the speed benchmark times) on the same weights, inputs and draws, over two
    iterations with boxes (Adam state and D's running statistics carried over) and one without."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("official_loops", Path(__file__).parents[2] / "bench"
                                                  / "official_loops.py")
    official_loops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official_loops)
    model = _model()
    optimizers = model.configure_optimizers()[0]
    reference = official_loops.OfficialInstaFormerLoop(model)
    names = ["D_fake_loss", "D_real_loss", "total_D_loss", "GAN_loss", "recon_loss", "style_loss", "NCE_loss",
             "instNCE_loss", "total_G_loss"]
    for seed in range(3):
        real_a, real_b, box_a, box_b = model.example_inputs(2, SIZE, generator=torch.Generator().manual_seed(seed))
        if seed == 2:
            box_a = box_b = None
        reference.step(real_a, real_b, box_a, box_b)
        assert [phase for phase, _ in reference.drawn] == ["I2I", "NCE", "NCE", "NCE"] + ["instNCE"] * (seed < 2)
        out = model.optimization_step(real_a, real_b, box_a, box_b, *optimizers, draws=reference.zoo_draws())
        ours = model.official_losses(out.losses)
        assert list(reference.losses) == names
        for name in names:
            torch.testing.assert_close(ours[name].detach(), reference.losses[name], rtol=1e-4, atol=1e-6, msg=name)
        assert (reference.losses["instNCE_loss"] > 0) == (seed < 2)
    assert reference.infer(real_a[:1]).shape == (1, 3, SIZE, SIZE)

def test_optimizers_follow_the_official_code():
    model = _model()
    (opt_g, opt_d, opt_f), schedulers = model.configure_optimizers()
    assert schedulers == []  # the official StepLR is commented out
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999) and opt_d.param_groups[0]["betas"] == (0.5, 0.999)
    assert opt_f.param_groups[0]["betas"] == (0.9, 0.999)  # Adam(lr) with PyTorch's default betas
    box_branch = {id(p) for p in model.generator.decoder.inv_patch_embed_box.parameters()}
    g_params = {id(p) for p in opt_g.param_groups[0]["params"]}
    assert not box_branch & g_params  # no loss reaches the decoder's box branch
    assert len(g_params) + len(box_branch) == len(list(model.generator.parameters()))
    heads = {id(p) for m in (model.mlp_head, model.mlp_head_inst) for p in m.parameters()}
    assert {id(p) for p in opt_f.param_groups[0]["params"]} == heads


class _BoxBatches(Dataset):
    """Random unpaired 64-px images with boxes (items as a box DataModule gives them)."""

    def __init__(self, model: InstaFormer, length: int = 4) -> None:
        g = torch.Generator().manual_seed(5)
        self.items = []
        for _ in range(length):
            real_a, real_b, box_a, box_b = model.example_inputs(1, SIZE, generator=g)
            self.items.append({"real_a": real_a[0], "real_b": real_b[0], "box_a": box_a[0], "box_b": box_b[0]})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.items[index]


class _BoxData(L.LightningDataModule):
    def __init__(self, model: InstaFormer) -> None:
        super().__init__()
        self.dataset = _BoxBatches(model)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=2, shuffle=False)


class _FirstBatchState(L.Callback):
    """The model's state dict and every optimizer's state right before the first training batch."""

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if not hasattr(self, "optimizers"):
            self.model = {k: v.clone() for k, v in module.state_dict().items()}
            self.optimizers = [copy.deepcopy(o.state_dict()) for o in trainer.optimizers]


def _fit(root: Path, max_steps: int, ckpt_path: str | None = None) -> tuple[InstaFormer, ZooTrainer, _FirstBatchState]:
    model = _model()
    first = _FirstBatchState()
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=root, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, max_steps=max_steps,
                         limit_val_batches=0, callbacks=[first])
    trainer.fit(model, datamodule=_BoxData(model), ckpt_path=ckpt_path)
    return model, trainer, first


def _assert_same_optimizer_state(ours: dict, theirs: dict) -> None:
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for index, state in ours["state"].items():
        assert all(torch.equal(value, theirs["state"][index][key]) for key, value in state.items()), index


def test_resume_restores_every_optimizer_and_both_heads(tmp_path):
    """The official resume loads G's Adam state into D's optimizer, keeps one file for all three and never reloads
    the MLP heads; zoo's checkpoints hold each one's own state, and a resumed run starts from all of them."""
    trained, half, _ = _fit(tmp_path / "half", 2)
    ckpt = half.run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    states = checkpoint["optimizer_states"]
    assert len(states) == 3
    assert [group["betas"] for state in states for group in state["param_groups"]] == [(0.5, 0.999), (0.5, 0.999),
                                                                                       (0.9, 0.999)]
    heads = len(list(trained.mlp_head.parameters())) + len(list(trained.mlp_head_inst.parameters()))
    assert len(states[2]["state"]) == heads  # both heads trained (valid boxes in every batch)
    for saved, optimizer in zip(states, half.optimizers, strict=True):
        _assert_same_optimizer_state(saved, optimizer.state_dict())
    assert any(key.startswith("mlp_head_inst.") for key in checkpoint["state_dict"])
    _, resumed, first = _fit(tmp_path / "resumed", 4, ckpt_path=str(ckpt))
    assert resumed.iterations > 2
    for key, value in trained.state_dict().items():
        assert torch.equal(first.model[key], value), f"{key} not restored"
    for saved, restored in zip(states, first.optimizers, strict=True):
        _assert_same_optimizer_state(saved, restored)


# ------------------------------------------------------------------------------------------------ official files


def _official_files(model: InstaFormer, folder: Path) -> None:
    """Every network's weights as the official ``weights_<epoch>/<Net>.pth`` (saved from nn.DataParallel)."""
    folder.mkdir(parents=True)
    for net in OFFICIAL_MODULES:
        torch.save({f"module.{k}": v.clone() for k, v in model.official_state_dict(net).items()}, folder / f"{net}.pth")


def test_official_checkpoint_round_trip(tmp_path):
    source = _model()
    source.optimization_step(*source.example_inputs(2, SIZE), *source.configure_optimizers()[0])  # BN stats move
    _official_files(source, tmp_path / "weights_1")
    target = _model(ema_decay=0.9)
    assert target.load_official_checkpoint(tmp_path / "weights_1") == list(OFFICIAL_MODULES)
    source_state, target_state = source.state_dict(), target.state_dict()
    for key, value in source_state.items():
        assert torch.equal(target_state[key], value), key
    for key, value in source.generator.state_dict().items():  # the EMA copy follows
        assert torch.equal(target.ema["generator"].module.state_dict()[key], value), key
    x = _images()
    torch.testing.assert_close(target.eval().translate(x, seed=0), source.eval().translate(x, seed=0), rtol=0, atol=0)
    # one file at a time, and a mapping of several
    other = _model()
    state = torch.load(tmp_path / "weights_1" / "Transformer.pth", weights_only=True)
    other.load_official_weights(state, net="Transformer")
    assert all(torch.equal(v, source.official_state_dict("Transformer")[k])
               for k, v in other.official_state_dict("Transformer").items())
    other.load_official_weights({"Decoder": source.official_state_dict("Decoder")})
    assert set(other.convert_official_state_dict(state, net="Transformer")) == {
        f"generator.transformer.{k}" for k in source.official_state_dict("Transformer")}
    with pytest.raises(ValueError, match="net must be one of"):
        other.load_official_weights(state, net="Generator")
    with pytest.raises(ValueError, match="give net="):
        other.load_official_weights(state)
    with pytest.raises(RuntimeError, match="Missing key"):
        other.load_official_weights({k: v for k, v in list(state.items())[1:]}, net="Transformer")
    with pytest.raises(FileNotFoundError):
        other.load_official_checkpoint(tmp_path)


def test_official_full_size_widths_and_config():
    """The official constructors' widths are the defaults; the official config gives the rest."""
    config = {"Train": {"batch_size": 5, "lr": 0.0002, "beta1": 0.5, "beta2": 0.999, "w_GAN": 1.0, "w_Recon": 10.0,
                        "w_Style": 10.0, "w_NCE": 2.0, "w_Instance_NCE": 2.0, "feat_layers": [0, 4, 8],
                        "num_patches": 256, "height": 352, "width": 352, "num_box": 20}}
    args = InstaFormer.init_args_from_official(config)
    assert args["img_size"] == 88 and args["w_nce"] == 2.0 and args["num_box"] == 20
    with pytest.raises(ValueError, match="square"):
        InstaFormer.init_args_from_official({**config["Train"], "width": 256})
    model = zoo.create("instaformer")
    assert model.image_size == 352
    shapes = {k: tuple(v.shape) for k, v in model.official_state_dict("Transformer").items()}
    assert shapes["pos_embed_x.pe"] == (88, 1, 256)
    assert shapes["transformer.layers.0.0.fn.to_qkv.weight"] == (3 * 4 * 256, 1024)  # 4 heads of feat_C = 256
    assert shapes["transformer.layers.5.1.fn.net.0.weight"] == (4096, 1024)
    assert tuple(model.official_state_dict("MLP_Adain")["model.2.fc.weight"].shape) == (2048, 256)
    assert tuple(model.official_state_dict("Decoder")["inv_patch_embed.2.weight"].shape) == (1024, 256, 8, 8)
    assert tuple(model.official_state_dict("MLP_head_inst")["mlp_0.0.weight"].shape) == (64, 256)
