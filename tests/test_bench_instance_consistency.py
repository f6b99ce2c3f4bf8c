"""``bench/instance_consistency.py`` at a tiny setting: the result's structure, the value ranges, and the helpers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import instance_consistency as ic  # noqa: E402

REFERENCE_ROWS = ("photo (target domain, same scenes)", "sim (untranslated)")


def test_tiny_run(tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "result.json"
    try:
        # 64 px and 400 segmenter iterations: the segmenter that ships with zoo, nothing is trained for scoring.
        result = ic.main(["--methods", "cyclegan", "instaformer", "--iterations", "2", "--eval-images", "2",
                          "--reference-images", "8", "--image-size", "64", "--segmenter-iterations", "400",
                          "--threads", "1", "--set", "instaformer:depth=1", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert printed.startswith("reproduce: python bench/instance_consistency.py --methods cyclegan instaformer ")
    assert "--set instaformer:depth=1" in printed and "inst dist" in printed
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))

    assert result["settings"]["image_size"] == 64 and result["num_box"] == 20
    assert result["rows"][-2]["init_args"]["img_size"] == 16 and result["rows"][-2]["init_args"]["depth"] == 1
    names = [row["method"] for row in result["rows"]]
    assert names == [*REFERENCE_ROWS, "cyclegan", "instaformer", "instaformer (no boxes at test)"]
    counts = result["instances"]
    assert set(counts) <= set(ic.SHORT) | {"car", "person", "pole", "truck", "bus"} and sum(counts.values()) > 0
    for row in result["rows"]:
        assert 0 <= row["box_acc"] <= 1 and 0 <= row["mIoU"] <= 1
        assert set(row["per_class"]) == {name for name, count in counts.items() if count}
        assert all(0 <= value <= 1 for value in row["per_class"].values())
        assert math.isfinite(row["inst_dist"]) and row["inst_dist"] >= 0
        assert all(math.isfinite(value) and value >= 0 for value in row["per_class_dist"].values())
        if row["method"] in REFERENCE_ROWS:
            assert row["train_seconds"] is None
        else:
            assert row["train_seconds"] > 0 and row["seeds"] == [0] and len(row["runs"]) == 1
    assert [row["test_boxes"] for row in result["rows"][2:]] == [False, True, False]


def test_instances_and_descriptors():
    data = ic.instance_eval_set(3, 64, split="test", seed=0, statistics="matched", num_box=20)
    assert data["box_rows"].shape == (3, 20, 5) and data["labels"].shape == (3, 64, 64)
    instances = ic.scene_instances(data["labels"], data["boxes"], min_pixels=4)
    masks = instances["masks"]
    assert len(masks) > 0 and bool((masks.sum((1, 2)) >= 4).all())
    # Every instance pixel is labelled with the instance's class in its scene.
    assert bool((data["labels"][instances["image"]] == instances["train_id"][:, None, None])[masks].all())

    # A flat image: the mean is its colour, every spread and the gradient inside are 0 (away from no edge at all).
    flat = torch.tensor([0.2, 0.4, 0.6])[None, :, None, None].expand(3, 3, 64, 64)
    descriptors = ic.instance_descriptors(flat, instances)
    assert descriptors.shape == (len(masks), 8)
    expected = torch.tensor([0.2, 0.4, 0.6, 0, 0, 0, 0, 0])
    torch.testing.assert_close(descriptors, expected.expand_as(descriptors), atol=1e-6, rtol=0)

    # Distances: 0 at a class's mean, NaN for a class without reference statistics.
    reference = {0: (torch.zeros(8), torch.ones(8))}
    distances = ic.instance_distances(torch.stack([torch.zeros(8), torch.full((8,), 2.0)]),
                                      torch.tensor([0, 1]), reference)
    assert distances[0] == 0 and math.isnan(distances[1])


def test_other_methods_ignore_the_boxes():
    import zoo

    batch = {"real_a": torch.zeros(1, 3, 32, 32), "real_b": torch.zeros(1, 3, 32, 32),
             "box_a": torch.full((1, 20, 5), -1.0), "box_b": torch.full((1, 20, 5), -1.0)}
    for method in ("cyclegan", "cut"):
        inputs = zoo.create(ic.METHODS[method][0], **ic.METHODS[method][1]).training_inputs(batch)
        assert len(inputs) == 2 and all(x.shape == (1, 3, 32, 32) for x in inputs)
