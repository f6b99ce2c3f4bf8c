"""PredictionWriter: files mirror the inputs' relative paths, keep their size, and are never overwritten silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from zoo.callbacks import PredictionWriter


class Images(Dataset):
    """Predict items as the DataModules give them: ``real_a`` in [-1, 1] at its own size, plus paths.

    Args:
        sizes: (H, W) of each item.
        relpaths: relative path of each item (None: no ``relpath_a``).
        paths: give ``path_a`` (``/data/<relpath>``).
        with_b: also give ``real_b`` / ``path_b`` / ``relpath_b`` (``b_<relpath>``).
    """

    def __init__(self, sizes: list[tuple[int, int]], relpaths: list[str] | None, *, paths: bool = True,
                 with_b: bool = False) -> None:
        self.sizes, self.relpaths, self.paths, self.with_b = sizes, relpaths, paths, with_b

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(i)
        item: dict[str, Any] = {"real_a": torch.rand(3, *self.sizes[i], generator=g) * 2 - 1}
        sides = ("a", "b") if self.with_b else ("a",)
        if self.with_b:
            item["real_b"] = torch.rand(3, *self.sizes[i], generator=g) * 2 - 1
        for side in sides:
            relpath = None if self.relpaths is None else self.relpaths[i] if side == "a" else f"b_{self.relpaths[i]}"
            if relpath is not None:
                item[f"relpath_{side}"] = relpath
            if self.paths:
                item[f"path_{side}"] = f"/data/{relpath or f'img{i}.jpg'}"
        return item


class Translator(L.LightningModule):
    """``predict_step`` like zoo's methods: nearest upscaling by ``scale``; ``styles`` > 1 gives (B, K, C, H, W)."""

    def __init__(self, scale: int = 1, styles: int = 1, wrong_size: bool = False) -> None:
        super().__init__()
        self.scale, self.styles, self.wrong_size = scale, styles, wrong_size
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def _translate(self, x: Tensor) -> Tensor:
        y = torch.nn.functional.interpolate((x + 1) / 2, scale_factor=self.scale, mode="nearest")
        if self.wrong_size:
            y = y[..., :-1, :]
        if self.styles > 1:
            y = torch.stack([y * (k + 1) / self.styles for k in range(self.styles)], dim=1)
        return y

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        out = {"fake_b": self._translate(batch["real_a"])}
        if "real_b" in batch:
            out["fake_a"] = self._translate(batch["real_b"])
        return out


def _predict(tmp_path: Path, data: Images, writer: PredictionWriter, *, model: Translator | None = None,
             batch_size: int = 1, **trainer_kwargs: Any) -> L.Trainer:
    trainer = L.Trainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[writer], **trainer_kwargs)
    trainer.predict(model or Translator(), DataLoader(data, batch_size=batch_size), return_predictions=False)
    return trainer


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.height, image.width


def test_one_key_mirrors_the_input_layout_and_keeps_sizes(tmp_path, capsys):
    out = tmp_path / "out"
    sizes = [(5, 7), (6, 4), (9, 3)]
    writer = PredictionWriter(out)
    _predict(tmp_path, Images(sizes, ["x.jpg", "sub/y.png", "sub/deeper/z.jpeg"]), writer, model=Translator(scale=2))
    assert _files(out) == ["sub/deeper/z.png", "sub/y.png", "x.png"]
    assert writer.written == [out / "x.png", out / "sub/y.png", out / "sub/deeper/z.png"]
    for path, (h, w) in zip(writer.written, sizes, strict=True):
        assert _size(path) == (2 * h, 2 * w)
    assert capsys.readouterr().out.strip().endswith(f"zoo: wrote 3 images to {out}")


def test_several_keys_get_one_folder_each(tmp_path):
    out = tmp_path / "out"
    data = Images([(4, 6), (4, 6)], ["p/one.jpg", "two.jpg"], with_b=True)
    _predict(tmp_path, data, PredictionWriter(out), batch_size=2)
    assert _files(out) == ["fake_a/b_p/one.png", "fake_a/b_two.png", "fake_b/p/one.png", "fake_b/two.png"]


def test_styles_are_written_as_separate_files(tmp_path):
    out = tmp_path / "out"
    writer = PredictionWriter(out)
    _predict(tmp_path, Images([(4, 4), (4, 4)], ["a.jpg", "s/b.jpg"]), writer, model=Translator(styles=3),
             batch_size=2)
    assert _files(out) == ["a_style0.png", "a_style1.png", "a_style2.png",
                           "s/b_style0.png", "s/b_style1.png", "s/b_style2.png"]
    with Image.open(out / "a_style0.png") as first, Image.open(out / "a_style2.png") as last:
        assert first.tobytes() != last.tobytes()


def test_file_names_without_relative_paths_or_without_any_path(tmp_path):
    named, anonymous = tmp_path / "named", tmp_path / "anonymous"
    _predict(tmp_path, Images([(4, 4)] * 2, None), PredictionWriter(named))
    assert _files(named) == ["img0.png", "img1.png"]
    _predict(tmp_path, Images([(4, 4)] * 3, None, paths=False), PredictionWriter(anonymous), batch_size=2)
    assert _files(anonymous) == ["0_0.png", "0_1.png", "1_0.png"]


def test_default_folder_is_the_run_folder(tmp_path):
    writer = PredictionWriter()
    _predict(tmp_path, Images([(4, 4)], ["x.jpg"]), writer)
    assert writer.output_dir == tmp_path / "predictions"
    assert (tmp_path / "predictions" / "x.png").is_file()


def test_existing_file_stops_the_run_before_the_first_batch_is_written(tmp_path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "y.png").write_bytes(b"keep")
    writer = PredictionWriter(out)
    with pytest.raises(FileExistsError, match=r"sub/y\.png.*--overwrite"):
        _predict(tmp_path, Images([(4, 4)] * 3, ["x.jpg", "sub/y.jpg", "z.jpg"]), writer, batch_size=2)
    assert _files(out) == ["sub/y.png"] and (out / "sub" / "y.png").read_bytes() == b"keep"
    assert writer.written == []


def test_overwrite_replaces_existing_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.png").write_bytes(b"old")
    _predict(tmp_path, Images([(4, 5)], ["x.jpg"]), PredictionWriter(out, overwrite=True))
    assert _size(out / "x.png") == (4, 5)


def test_two_inputs_with_one_destination_are_an_error_naming_both(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"/data/a\.jpg.*/data/a\.png.*a\.png"):
        _predict(tmp_path, Images([(4, 4)] * 2, ["a.jpg", "a.png"]), PredictionWriter(out), batch_size=2)
    assert not out.exists()
    # across batches too: the second one is refused, the first one stays
    with pytest.raises(ValueError, match=r"/data/a\.jpg.*/data/a\.png"):
        _predict(tmp_path, Images([(4, 4)] * 2, ["a.jpg", "a.png"]), PredictionWriter(out), batch_size=1)
    assert _files(out) == ["a.png"]


def test_outputs_of_another_size_are_refused(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="input size"):
        _predict(tmp_path, Images([(4, 4)], ["x.jpg"]), PredictionWriter(out), model=Translator(wrong_size=True))
    assert not out.exists()


def test_relative_paths_cannot_leave_the_output_folder(tmp_path):
    with pytest.raises(ValueError, match=r"\.\."):
        _predict(tmp_path, Images([(4, 4)], ["../x.jpg"]), PredictionWriter(tmp_path / "out"))


@pytest.mark.ddp
def test_each_process_writes_its_own_items(tmp_path):
    out = tmp_path / "out"
    names = [f"d{i % 2}/img{i}.jpg" for i in range(5)]
    _predict(tmp_path, Images([(4, 4)] * 5, names), PredictionWriter(out), devices=2, strategy="ddp_spawn")
    assert _files(out) == sorted(n.replace(".jpg", ".png") for n in names)
