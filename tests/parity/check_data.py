"""Parity check of zoo's paired-data pipeline against an official ``data_transform`` fixture case.

A case records one official ``AlignedDataset.__getitem__`` call on a synthetic side-by-side A|B image: the image
(``in.AB``), the options (``official_call.opt``), the Python ``random`` seed set right before the call, and the official
``A`` / ``B`` tensors. Everything below is built from those fields.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zoo.data.paired import PairedImageDataset
from zoo.data.transforms import get_params

__all__ = ["check_data_transform"]


def _write_ab_png(pixels: torch.Tensor, path: Path) -> None:
    array = pixels.to(torch.uint8).numpy()
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3):
        raise ValueError(f"in.AB must be (H, W) or (H, W, C) uint8 pixels, got shape {tuple(pixels.shape)}.")
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def check_data_transform(case: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Assert that :class:`~zoo.data.paired.PairedImageDataset` reproduces an official aligned-dataset item.

    The official ``__getitem__`` returns ``A`` = the left half and ``B`` = the right half of the file (``direction``
    only swaps them later, in the model's ``set_input``); with ``BtoA`` the left half is zoo's ``real_b``. The left
    half is grayscale when ``output_nc == 1`` under ``BtoA`` or ``input_nc == 1`` under ``AtoB``, as in the official
    dataset.

    Args:
        case: A manifest case with ``kind == "data_transform"``.
        tensors: The case's safetensors: ``in.AB`` (H, W, 3) uint8, ``out.A`` / ``out.B`` (C, H, W) float32.

    Raises:
        AssertionError: A tensor or the drawn transform parameters differ from the official ones.
    """
    if case.get("kind") != "data_transform":
        raise ValueError(f"Case '{case.get('name')}' is of kind '{case.get('kind')}', not 'data_transform'.")
    opt = case["official_call"]["opt"]
    seed = case["python_random_seed"]
    tolerance = case["tolerance"]
    phase = opt.get("phase", "train")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / phase
        folder.mkdir(parents=True)
        _write_ab_png(tensors["in.AB"], folder / "case.png")
        dataset = PairedImageDataset(
            root=tmp,
            phase=phase,
            layout="side_by_side",
            direction=opt.get("direction", "AtoB"),
            preprocess=opt["preprocess"],
            load_size=opt["load_size"],
            crop_size=opt["crop_size"],
            no_flip=opt["no_flip"],
            input_nc=opt.get("input_nc", 3),
            output_nc=opt.get("output_nc", 3),
        )
        item = dataset.load_item(0, rng=random.Random(seed))

    if "transform_params" in case:
        height, width = tensors["in.AB"].shape[:2]
        params = get_params(
            preprocess=opt["preprocess"],
            load_size=opt["load_size"],
            crop_size=opt["crop_size"],
            size=(int(width / 2), height),
            rng=random.Random(seed),
        )
        recorded = case["transform_params"]
        if "crop_pos_xy" in recorded:
            assert list(params.crop_pos) == list(recorded["crop_pos_xy"]), (
                f"{case['name']}: crop position {params.crop_pos} != official {recorded['crop_pos_xy']}"
            )
        if "flip_drawn" in recorded:
            assert params.flip == recorded["flip_drawn"], f"{case['name']}: flip {params.flip} != official"

    left, right = (item["real_a"], item["real_b"]) if dataset.direction == "AtoB" else (item["real_b"], item["real_a"])
    for name, ours in (("A", left), ("B", right)):
        expected = tensors[f"out.{name}"]
        assert ours.shape == expected.shape, (
            f"{case['name']}: out.{name} shape {tuple(ours.shape)} != {tuple(expected.shape)}"
        )
        torch.testing.assert_close(
            ours,
            expected,
            atol=tolerance["atol"],
            rtol=tolerance["rtol"],
            msg=lambda m, n=name: f"{case['name']} out.{n}: {m}",
        )
