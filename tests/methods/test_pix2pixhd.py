"""pix2pixHD beyond the oracle cases: instance boundaries, the fixed-global phase and learning rates under the
Trainer, the feature encoder and its clusters, starting a local enhancer from a global run, official files."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from tests.parity.manifest import reference_dir, strip
from zoo.data import LabelMapDataModule
from zoo.methods import Pix2PixHD
from zoo.methods.pix2pixhd import label_ids, official_learning_rates
from zoo.nets.pix2pixhd import instance_edges
from zoo.trainer import ZooTrainer

TINY = dict(label_nc=35, ngf=4, n_downsample_global=2, n_blocks_global=1, ndf=4, n_layers_d=2, num_d=2,
            vgg_weights=None, vgg_width_div=16)
TINY_LOCAL = dict(TINY, generator="local", ngf=2, n_blocks_local=1)


def _data(**overrides) -> LabelMapDataModule:
    args = dict(root=None, label_nc=35, image_size=32, toy_length=2, toy_test_length=2, batch_size=1, val_size=1)
    return LabelMapDataModule(**{**args, **overrides})


def _trainer(tmp_path, **kwargs) -> ZooTrainer:
    defaults = dict(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_image_grid=False, limit_val_batches=0)
    return ZooTrainer(**{**defaults, **kwargs})


def _two_cars() -> tuple[torch.Tensor, torch.Tensor]:
    """A road with two touching cars of one class: label map (1, 1, 32, 32) as read (id / 255), instance ids."""
    road, car = 7, 26
    ids = torch.full((1, 1, 32, 32), road)
    ids[..., 12:24, 4:16] = car
    ids[..., 12:24, 16:28] = car
    instance = ids.clone()
    instance[..., 12:24, 4:16] = car * 1000
    instance[..., 12:24, 16:28] = car * 1000 + 1
    return ids / 255, instance.float()


def test_instance_boundaries_separate_touching_objects_of_one_class():
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY).eval()
    labels, instance = _two_cars()
    with_instances = model.encode_input(labels * 2 - 1, instance)
    without = model.encode_input(labels * 2 - 1, None)  # class boundaries only
    assert torch.equal(with_instances[:, :35], without[:, :35]), "the one-hot channels cannot tell the cars apart"
    border = with_instances[0, 35, 13:23, 15:17]  # where the cars touch (rows inside both cars)
    assert border.eq(1).all() and without[0, 35, 13:23, 15:17].eq(0).all()
    assert torch.equal(with_instances[:, 35:], instance_edges(instance))
    assert not torch.equal(model.translate(labels, instance=instance), model.translate(labels))


def test_label_ids_round_trip_through_image_reading_and_out_of_range_ids_are_refused():
    ids = torch.arange(256).view(1, 1, 16, 16)
    assert torch.equal(label_ids(ids / 255), ids)
    assert torch.equal(label_ids(((ids / 255 * 2 - 1) + 1) / 2), ids)  # model space and back
    model = Pix2PixHD(**TINY)
    with pytest.raises(ValueError, match="label_nc"):
        model.translate(torch.full((1, 1, 16, 16), 40 / 255))


class _Record(Callback):
    """Generator weights at the end of every epoch and learning rates at the start of every batch."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []
        self.lrs: list[tuple[float, float, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        opt_g, opt_d = (o.optimizer for o in pl_module.optimizer_list())
        self.lrs.append((opt_g.param_groups[0]["lr"], opt_g.param_groups[-1]["lr"], opt_d.param_groups[0]["lr"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.states.append(copy.deepcopy(pl_module.generator.state_dict()))


@pytest.mark.parametrize("mode", ["refresh", "official_head"])
def test_fixed_global_phase_under_the_trainer(mode, tmp_path):
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY_LOCAL, n_epochs_fix_global=1, fix_global_optimizer=mode)
    initial = copy.deepcopy(model.generator.state_dict())
    record = _Record()
    _trainer(tmp_path, max_epochs=2, callbacks=[record]).fit(model, datamodule=_data())
    global_keys = [k for k in initial if k.startswith("model.")]
    local_keys = [k for k in initial if k.startswith("model1_") and k.endswith("weight")]
    after_fixed, after_all = record.states
    assert all(torch.equal(after_fixed[k], initial[k]) for k in global_keys), "epoch 1 must not step G1"
    assert all(not torch.equal(after_fixed[k], initial[k]) for k in local_keys)
    moved = [k for k in global_keys if k.endswith("weight") and not torch.equal(after_all[k], initial[k])]
    if mode == "refresh":
        assert len(moved) == len([k for k in global_keys if k.endswith("weight")]), "epoch 2 fine-tunes G1"
    else:
        assert not moved, "official_head never fine-tunes the global generator"
    second_epoch = [2e-4] * 2 if mode == "refresh" else [0.0] * 2
    assert [lr_global for _, lr_global, _ in record.lrs] == [0.0, 0.0] + second_epoch


def test_refresh_restarts_the_generator_optimizer_after_the_fixed_phase():
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY_LOCAL, n_epochs_fix_global=1)
    (opt_g, opt_d), _ = model.configure_optimizers()
    model.optimization_step(*model.example_inputs(1, 32), opt_g, opt_d)
    assert opt_g.state and opt_d.state
    model.end_epoch(1, opt_g)
    assert not opt_g.state and opt_d.state, "a fresh Adam state for G, D keeps its own"
    model.end_epoch(2, opt_g)  # only the end of the fixed phase refreshes


def test_learning_rates_decay_linearly_under_the_trainer(tmp_path):
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY, n_epochs=1, n_epochs_decay=3)
    record = _Record()
    _trainer(tmp_path, max_epochs=3, callbacks=[record]).fit(model, datamodule=_data(toy_length=1))
    expected = official_learning_rates(2e-4, 1, 3, 0, 3)
    assert [(g, d) for g, _, d in record.lrs] == expected
    assert expected[1][0] == pytest.approx(2e-4) and expected[2][0] == pytest.approx(2e-4 * 2 / 3)


def test_official_head_stops_the_generator_decay_at_the_end_of_the_fixed_phase():
    refresh = official_learning_rates(1.0, 2, 4, 4, 6, "refresh")
    head = official_learning_rates(1.0, 2, 4, 4, 6, "official_head")
    assert [d for _, d in head] == [d for _, d in refresh] == [g for g, _ in refresh]
    # the decay after epoch 3 still reaches train.py's optimizer; update_fixed_params at the end of 4 replaces it
    assert [g for g, _ in head] == [1.0, 1.0, 1.0, 0.75, 0.75, 0.75]
    assert [g for g, _ in refresh] == [1.0, 1.0, 1.0, 0.75, 0.5, 0.25]


def test_feature_encoder_clusters_each_epoch_and_translate_samples_them(tmp_path):
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY, instance_feat=True, nef=4, n_downsample_e=2, n_clusters=2)
    labels, instance = _two_cars()
    with pytest.raises(ValueError, match="feature clusters"):
        model.translate(labels, instance=instance)
    _trainer(tmp_path, max_epochs=1).fit(model, datamodule=_data(toy_length=3))
    counts = model.feature_cluster_counts
    assert counts.sum() > 0 and int(counts.max()) <= 2
    ckpt = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=True)
    assert torch.equal(ckpt["state_dict"]["feature_clusters"], model.feature_clusters)
    model.feature_clusters[26, :2] = torch.tensor([[0.5, -0.5, 0.5], [-0.5, 0.5, -0.5]])
    model.feature_cluster_counts[26] = 2
    sampled = {seed: model.sample_features(instance, generator=torch.Generator().manual_seed(seed))
               for seed in range(8)}
    for features in sampled.values():  # one centre per instance, constant inside it
        for region in (instance == 26000, instance == 26001):
            inside = features[:, :, region[0, 0]]
            assert torch.equal(inside, inside[..., :1].expand_as(inside))
    assert len({tuple(f[0, :, 15, 10].tolist()) for f in sampled.values()}) == 2, "both car clusters get drawn"
    assert torch.equal(model.translate(labels, instance=instance, seed=3),
                       model.translate(labels, instance=instance, seed=3))
    features = sampled[0]
    edited = features.clone()
    edited[:, :, instance[0, 0] == 26001] = -features[:, :, instance[0, 0] == 26001]
    change = (model.translate(labels, instance=instance, features=edited)
              - model.translate(labels, instance=instance, features=features)).abs().mean(1)[0]
    assert change[12:24, 17:28].mean() > 1.5 * change[:, :4].mean(), "editing one car changes that car the most"


def test_encode_features_gives_one_row_per_instance_with_its_relative_area():
    torch.manual_seed(0)
    model = Pix2PixHD(**TINY, instance_feat=True, nef=4, n_downsample_e=2)
    labels, instance = _two_cars()
    photo = torch.rand(1, 3, 32, 32) * 2 - 1
    rows = model.encode_features(labels * 2 - 1, photo, instance)
    assert sorted(rows) == [7, 26] and rows[26].shape == (2, 4) and rows[7].shape == (1, 4)
    assert rows[26][:, -1].tolist() == pytest.approx([144 / 32, 144 / 32])  # 12x12 px over (32*32 // 32)
    label_feat = Pix2PixHD(**TINY, label_feat=True, nef=4, n_downsample_e=2)
    assert label_feat.encode_features(labels * 2 - 1, photo, instance)[26].shape == (1, 4), "one region per class"


def test_exact_resume_with_feature_clusters_and_image_pool(tmp_path):
    args = dict(TINY, instance_feat=True, nef=4, n_downsample_e=2, pool_size=2)

    def run(max_steps: int, root, ckpt_path=None):
        torch.manual_seed(0)
        model = Pix2PixHD(**args)
        trainer = _trainer(root, max_steps=max_steps)
        trainer.fit(model, datamodule=_data(toy_length=2), ckpt_path=ckpt_path)
        return model, trainer

    straight, _ = run(5, tmp_path / "straight")
    _, half = run(3, tmp_path / "half")
    resumed, _ = run(5, tmp_path / "resumed", ckpt_path=str(half.run_dir / "checkpoints" / "last.ckpt"))
    assert int(straight.feature_cluster_counts.sum()) > 0
    for (key, expected), actual in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), f"{key} differs after resuming"
    assert all(torch.equal(a, b) for a, b in zip(straight.image_pool.images, resumed.image_pool.images, strict=True))


def test_a_global_run_starts_the_local_enhancer(tmp_path):
    torch.manual_seed(0)
    global_model = Pix2PixHD(**dict(TINY, ngf=4))
    path = tmp_path / "global.ckpt"
    torch.save({"state_dict": global_model.state_dict()}, path)
    local = Pix2PixHD(**TINY_LOCAL, global_generator_weights=str(path))  # ngf 2 * 2**1 = the global width 4
    local.load_global_generator(str(path))
    for key, value in local.generator.model.state_dict().items():
        assert torch.equal(value, global_model.generator.model.state_dict()[key])
    official = {k: v for k, v in global_model.generator.state_dict().items()}  # official latest_net_G.pth layout
    Pix2PixHD(**TINY_LOCAL).load_global_generator(official)
    with pytest.raises(ValueError, match="ngf"):
        Pix2PixHD(**dict(TINY_LOCAL, ngf=4)).load_global_generator(official)
    with pytest.raises(FileNotFoundError, match="train the global generator first"):
        Pix2PixHD(**TINY_LOCAL).load_global_generator(str(tmp_path / "missing.ckpt"))
    with pytest.raises(ValueError, match="generator: local"):
        Pix2PixHD(**TINY, global_generator_weights=str(path))


def test_global_weights_are_loaded_when_training_starts(tmp_path):
    torch.manual_seed(0)
    global_model = Pix2PixHD(**dict(TINY, ngf=4))
    path = tmp_path / "global.ckpt"
    torch.save({"state_dict": global_model.state_dict()}, path)
    local = Pix2PixHD(**TINY_LOCAL, global_generator_weights=str(path), n_epochs_fix_global=1)
    _trainer(tmp_path, max_steps=1).fit(local, datamodule=_data())
    for key, value in local.generator.model.state_dict().items():  # fixed: still the global run's weights
        assert torch.equal(value, global_model.generator.model.state_dict()[key])


def _manifest_case(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    folder = reference_dir() / "pix2pixhd"
    if not (folder / "MANIFEST.json").is_file():
        pytest.skip(f"no pix2pixHD fixtures in {folder}")
    case = next(c for c in json.loads((folder / "MANIFEST.json").read_text())["cases"] if c["name"] == name)
    return case, load_file(str(folder / case["file"]))


def test_official_generator_and_discriminator_files_load_and_export_unchanged():
    case, t = _manifest_case("train_local_fixglobal_2steps")
    model = Pix2PixHD(**Pix2PixHD.init_args_from_official(case["opt"]), vgg_weights=None)
    for net in ("G", "D"):
        official = strip(t, f"init.{net}.")
        model.load_official_weights(official, net=net)
        exported = model.official_state_dict(net)
        assert exported.keys() == official.keys()
        assert all(torch.equal(exported[k], official[k]) for k in official)
    with pytest.raises(Exception, match="model1_1"):
        Pix2PixHD(**TINY).load_official_weights(strip(t, "init.G."), net="G")  # a local file into a global model


def test_init_args_from_the_official_options():
    case, _ = _manifest_case("train_local_fixglobal_2steps")
    opt = dict(case["opt"], no_lsgan=True, no_ganFeat_loss=True, no_vgg_loss=True, instance_feat=True)
    args = Pix2PixHD.init_args_from_official(opt)
    assert args["generator"] == "local" and args["n_epochs_fix_global"] == 1 and args["n_layers_d"] == 2
    assert args["gan_mode"] == "vanilla" and not args["gan_feat_loss"] and not args["vgg_loss"]
    assert args["n_downsample_e"] == 4 and args["instance_feat"] and args["n_epochs"] == 100
    model = Pix2PixHD(**args)
    assert model.vgg is None and model.encoder is not None


def test_vanilla_gan_uses_the_sigmoid_without_feature_matching_and_logits_with_it():
    torch.manual_seed(0)
    inputs = Pix2PixHD(**TINY).example_inputs(1, 32)
    plain = Pix2PixHD(**TINY, gan_mode="vanilla", gan_feat_loss=False)
    assert any(isinstance(m, torch.nn.Sigmoid) for m in plain.discriminator.modules())
    with_matching = Pix2PixHD(**TINY, gan_mode="vanilla")  # officially a crash (BCELoss on raw scores)
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in with_matching.discriminator.modules())
    for model in (plain, with_matching):
        losses, _ = model.forward_losses(*inputs)
        assert all(torch.isfinite(v) for v in losses.values())
        assert ("g_gan_feat" in losses) == model.hparams.gan_feat_loss


def test_rgb_inputs_without_instances():
    torch.manual_seed(0)
    model = Pix2PixHD(**dict(TINY, label_nc=0, no_instance=True))
    assert model.domain_channels == (3, 3)
    images = model.example_images(2, 32)
    assert images.shape == (2, 3, 32, 32) and model.translate(images).shape == (2, 3, 32, 32)
    (opt_g, opt_d), _ = model.configure_optimizers()
    out = model.optimization_step(*model.example_inputs(1, 32), opt_g, opt_d)
    assert torch.isfinite(out.losses["g_total"])


def test_preview_colours_label_maps_with_the_cityscapes_palette():
    from zoo.data.toy_world import colorize

    model = Pix2PixHD(**TINY)
    labels, _ = _two_cars()
    preview = model.preview(labels)
    expected = torch.from_numpy(colorize(label_ids(labels)[0, 0].numpy())).permute(2, 0, 1).float() / 255
    assert preview.shape == (1, 3, 32, 32) and torch.allclose(preview[0], expected)
