"""The zoo command: fit with a config, --print_config, one-line errors, list, translate, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.cli import main
from zoo.errors import describe_parse_error
from zoo.methods import CycleGAN

TINY_CYCLEGAN = """\
model:
  class_path: CycleGAN
  init_args:
    ngf: 4
    ndf: 4
    generator: resnet_2blocks
    n_layers_d: 1
    discriminator: n_layers
    pool_size: 2
data:
  class_path: UnpairedDataModule
  init_args:
    load_size: 16
    crop_size: 16
    toy_length: 8
    batch_size: 2
    val_size: 2
trainer:
  accelerator: cpu
  limit_val_batches: 1
  enable_model_summary: false
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "cyclegan.yaml"
    path.write_text(TINY_CYCLEGAN)
    return path


@pytest.fixture(scope="module")
def fitted(config, tmp_path_factory) -> tuple[Path, str]:
    """One `zoo fit` run with the default (offline W&B) logger: its run folder and what it printed."""
    root = tmp_path_factory.mktemp("runs")
    import contextlib
    import io

    out = io.StringIO()
    args = ["fit", "--config", str(config), "--trainer.max_steps=2", f"--trainer.default_root_dir={root}"]
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
    return root / "cyclegan" / "version_0", out.getvalue()


def test_fit_writes_config_checkpoint_and_grids(fitted):
    run_dir, printed = fitted
    config_text = (run_dir / "config.yaml").read_text()
    assert "class_path: zoo.methods.CycleGAN" in config_text
    assert "max_steps: 2" in config_text
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    grids = sorted(p.name for p in (run_dir / "images").glob("*.png"))
    assert grids == ["a2b_iter0000002.png", "b2a_iter0000002.png"]
    assert list((run_dir / "wandb").glob("offline-run-*/files/media/images/samples/*.png"))
    for path in (ckpt, run_dir / "config.yaml", run_dir / "images"):
        assert str(path) in printed


def test_fit_max_steps_counts_gan_iterations(fitted):
    run_dir, _ = fitted
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["callbacks"]["_IterationTracker"]["iterations"] == 2
    assert checkpoint["global_step"] == 2 * CycleGAN.optimizer_steps_per_iteration


def test_checkpoint_translates_through_the_cli(fitted, tmp_path):
    run_dir, _ = fitted
    Image.fromarray(np.full((10, 14, 3), 128, np.uint8)).save(tmp_path / "x.png")
    assert (
        main(
            [
                "translate",
                "--model",
                str(run_dir / "checkpoints" / "last.ckpt"),
                "--input",
                str(tmp_path / "x.png"),
                "--output",
                str(tmp_path / "out"),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    with Image.open(tmp_path / "out" / "x.png") as out:
        assert out.size == (14, 10)


def test_validate_from_the_saved_config_and_checkpoint(fitted, capsys):
    run_dir, _ = fitted
    assert (
        main(
            [
                "validate",
                "--config",
                str(run_dir / "config.yaml"),
                "--ckpt_path",
                str(run_dir / "checkpoints" / "last.ckpt"),
                "--trainer.logger=false",
            ]
        )
        == 0
    )
    assert "val/cycle_a" in capsys.readouterr().out


def test_zoo_cli_object_for_notebooks(config, tmp_path):
    from zoo.cli import ZooCLI
    from zoo.trainer import ZooTrainer

    cli = ZooCLI(
        args=[
            "--config",
            str(config),
            "--trainer.max_steps=3",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert isinstance(cli.model, CycleGAN)
    assert isinstance(cli.trainer, ZooTrainer)
    assert cli.trainer.max_iterations == 3
    assert cli.trainer.run_name == "cyclegan"
    optimizers, _ = cli.model.configure_optimizers()  # the method's own optimizers, not replaced by the CLI
    assert len(optimizers) == 2


def test_print_config_shows_the_class_and_overrides(config, capsys):
    assert (
        main(
            ["fit", "--config", str(config), "--model.init_args.lambda_a=3", "--trainer.max_steps=7", "--print_config"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "class_path: zoo.methods.CycleGAN" in printed
    assert "lambda_a: 3.0" in printed
    assert "max_steps: 7" in printed
    assert "class_path: zoo.data.UnpairedDataModule" in printed


def _error_line(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_typo_fails_with_one_line_naming_the_key(config, capsys):
    line = _error_line(capsys, ["fit", "--config", str(config), "--model.init_args.lamda_a=3"])
    assert line == "zoo: error: unknown option 'model.init_args.lamda_a' (did you mean 'lambda_a'?)"
    line = _error_line(capsys, ["fit", "--config", str(config), "--trainer.max_stepz=3"])
    assert line == "zoo: error: unknown option 'trainer.max_stepz' (did you mean 'trainer.max_steps'?)"


def test_typo_in_the_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY_CYCLEGAN.replace("pool_size: 2", "pool_sise: 2"))
    line = _error_line(capsys, ["fit", "--config", str(bad)])
    assert line == "zoo: error: unknown option 'model.init_args.pool_sise' (did you mean 'pool_size'?)"


def test_wrong_type_fails_with_one_line(config, capsys):
    line = _error_line(capsys, ["fit", "--config", str(config), "--trainer.max_steps=many"])
    assert line == "zoo: error: bad value 'many' for 'trainer.max_steps': expected int"
    line = _error_line(capsys, ["fit", "--config", str(config), "--model.init_args.ngf=wide"])
    assert line == "zoo: error: bad value 'wide' for 'model.init_args.ngf': expected int"
    line = _error_line(capsys, ["fit", "--config", str(config), "--model.init_args.gan_mode=hinge"])
    assert line.startswith("zoo: error: bad value 'hinge' for 'model.init_args.gan_mode': expected one of 'lsgan'")


def test_bad_command_and_missing_config(tmp_path, capsys):
    assert _error_line(capsys, ["fitt"]) == "zoo: error: unknown command 'fitt' (did you mean 'fit'?); see zoo --help"
    line = _error_line(capsys, ["fit", "--config", str(tmp_path / "missing.yaml")])
    assert line.startswith("zoo: error: config file not found") and "missing.yaml" in line


def test_constructor_and_data_errors_are_one_line(config, tmp_path, capsys):
    line = _error_line(capsys, ["fit", "--config", str(config), "--model.init_args.input_nc=1"])
    assert line.startswith("zoo: error: cannot create zoo.methods.CycleGAN: the identity loss needs input_nc")
    missing = tmp_path / "no_data"
    line = _error_line(
        capsys,
        [
            "fit",
            "--config",
            str(config),
            f"--data.init_args.root={missing}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=false",
        ],
    )
    assert line.startswith("zoo: error:") and str(missing) in line


def test_download_unknown_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "cyclegan.no_such_weights"])
    assert exit_info.value.code == 2
    assert "cyclegan.no_such_weights" in capsys.readouterr().err


def test_describe_parse_error_without_a_suggestion():
    message = "Subcommand 'fit' does not accept option 'qwerty'"
    assert describe_parse_error(message, ["trainer.max_steps"]) == "unknown option 'qwerty'"


def test_list_shows_registered_methods(capsys):
    from zoo.registry import list_models

    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for name in list_models():
        assert name in printed
    assert "zoo.methods.cyclegan.CycleGAN" in printed
    assert "pretrained weights:" in printed


def test_help_lists_every_command_without_importing_lightning():
    code = "import sys; from zoo.cli import main; main(['--help']); print('lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for command in ("fit", "validate", "test", "predict", "translate", "list", "download"):
        assert f"  {command} " in result.stdout
    assert result.stdout.strip().endswith("False")
    module = subprocess.run([sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "translate" in module.stdout


# ----------------------------------------------------------------------------------------------------- translate


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    from zoo.hub import save_bundle

    torch.manual_seed(0)
    model = CycleGAN(ngf=4, ndf=4, generator="resnet_2blocks", n_layers_d=1, discriminator="n_layers")
    return save_bundle(model, tmp_path_factory.mktemp("bundle") / "tiny_cyclegan")


@pytest.fixture
def mixed_folder(tmp_path) -> tuple[Path, dict[str, tuple[int, int]]]:
    """Grayscale, RGBA, 16-bit grayscale and RGB images of odd sizes, one in a sub-folder."""
    folder = tmp_path / "inputs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (23, 17), dtype=np.uint8), mode="L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 256, (23, 17, 3), dtype=np.uint8)).save(folder / "gray_sized_rgb.png")
    Image.fromarray(rng.integers(0, 256, (12, 20, 4), dtype=np.uint8), mode="RGBA").save(folder / "rgba.png")
    deep = Image.fromarray(rng.integers(0, 65536, (9, 15), dtype=np.uint16))
    assert deep.mode.startswith("I;16")
    deep.save(folder / "deep.png")
    Image.fromarray(rng.integers(0, 256, (31, 33, 3), dtype=np.uint8)).save(folder / "sub" / "photo.jpg")
    sizes = {
        "gray.png": (17, 23),
        "gray_sized_rgb.png": (17, 23),
        "rgba.png": (20, 12),
        "deep.png": (15, 9),
        "sub/photo.jpg": (33, 31),  # each output keeps its input's file type
    }
    return folder, sizes


def _translate(bundle: Path, source: Path, target: Path, *extra: str) -> int:
    return main(
        [
            "translate",
            "--model",
            str(bundle),
            "--input",
            str(source),
            "--output",
            str(target),
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


def test_translate_folder_of_mixed_images(bundle, mixed_folder, tmp_path):
    folder, sizes = mixed_folder
    assert _translate(bundle, folder, tmp_path / "out") == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                     if p.is_file() and not p.name.startswith("."))
    assert written == sorted(sizes)
    for name, size in sizes.items():
        with Image.open(tmp_path / "out" / name) as image:
            assert image.size == size
            assert image.mode == "RGB"


def test_translate_is_deterministic(bundle, mixed_folder, tmp_path):
    folder, sizes = mixed_folder
    assert _translate(bundle, folder, tmp_path / "first", "--direction", "b2a") == 0
    assert _translate(bundle, folder, tmp_path / "second", "--direction", "b2a") == 0
    for name in sizes:
        first = np.asarray(Image.open(tmp_path / "first" / name))
        second = np.asarray(Image.open(tmp_path / "second" / name))
        assert np.array_equal(first, second), name


def test_translate_skips_an_output_folder_inside_the_input(bundle, mixed_folder):
    folder, sizes = mixed_folder
    assert _translate(bundle, folder, folder / "out") == 0
    assert _translate(bundle, folder, folder / "out") == 0  # the first run's outputs are not inputs now
    outputs = [p for p in (folder / "out").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert sorted(str(p.relative_to(folder / "out")) for p in outputs) == sorted(sizes)


def test_translate_errors_name_the_problem(bundle, tmp_path, capsys):
    line = _error_line(
        capsys,
        ["translate", "--model", str(bundle), "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out")],
    )
    assert line == f"zoo: error: input '{tmp_path / 'nope'}' does not exist"
    (tmp_path / "empty").mkdir()
    line = _error_line(
        capsys,
        ["translate", "--model", str(bundle), "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "out")],
    )
    assert "No images found" in line and "empty" in line
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    line = _error_line(
        capsys,
        [
            "translate",
            "--model",
            str(bundle),
            "--input",
            str(tmp_path / "x.png"),
            "--output",
            str(tmp_path / "out"),
            "--direction",
            "c2d",
        ],
    )
    assert "'c2d'" in line and "a2b" in line
    line = _error_line(
        capsys,
        [
            "translate",
            "--model",
            str(tmp_path / "missing.ckpt"),
            "--input",
            str(tmp_path / "x.png"),
            "--output",
            str(tmp_path / "out"),
        ],
    )
    assert "missing.ckpt" in line


@pytest.mark.ddp
def test_fit_on_two_processes_picks_the_gan_ddp_strategy(tmp_path):
    """Plain DDP would fail on the first generator step (the D step leaves G unused); zoo's default must not."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model:\n  class_path: tests.tiny.TinyGAN\ndata:\n  class_path: tests.tiny.TinyData\n"
        f"trainer:\n  accelerator: cpu\n  devices: 2\n  max_steps: 3\n  logger: csv\n  default_root_dir: {tmp_path}\n"
    )
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "fit", "--config", str(config)], cwd=repo, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dirs = sorted(p.name for p in (tmp_path / "tinygan").iterdir())
    assert run_dirs == ["version_0"]  # one run folder, chosen by rank 0
    checkpoint = torch.load(tmp_path / "tinygan" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["callbacks"]["_IterationTracker"]["iterations"] == 3
    assert result.stdout.count("zoo: fit finished after 3 iterations") == 1  # printed by rank 0 only
