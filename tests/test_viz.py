"""zoo.viz: the figures of the notebooks draw what they are given."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from zoo.viz import bar_chart, crop_zoom, image_rows, loss_curves, overlay_mask, read_loss_log  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_image_rows_puts_each_batch_in_a_titled_row():
    a, b = torch.rand(3, 3, 8, 8), torch.rand(3, 1, 16, 16)
    fig = image_rows({"input": a, "output": b}, column_titles=["x", "y", "z"], title="demo")
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["input", "output"]
    assert [ax.get_title() for ax in axes[0]] == ["x", "y", "z"] and fig._suptitle.get_text() == "demo"
    np.testing.assert_allclose(axes[0, 1].images[0].get_array(), a[1].permute(1, 2, 0).numpy(), atol=1e-6)
    assert axes[1, 2].images[0].get_array().shape == (16, 16)
    with pytest.raises(ValueError, match="same number"):
        image_rows({"a": a, "b": a[:2]})


def test_crop_zoom_shows_the_same_region_of_images_of_different_sizes():
    small, big = torch.rand(3, 16, 16), torch.rand(3, 64, 64)
    fig = crop_zoom({"lr": small, "sr": big}, (4, 8, 6, 4))
    axes = np.array(fig.axes).reshape(2, 2)
    np.testing.assert_allclose(axes[1, 0].images[0].get_array(), small[:, 4:10, 8:12].permute(1, 2, 0), atol=1e-6)
    np.testing.assert_allclose(axes[1, 1].images[0].get_array(), big[:, 16:40, 32:48].permute(1, 2, 0), atol=1e-6)


def test_overlay_mask_tints_only_inside_the_mask():
    images, masks = torch.zeros(1, 3, 2, 2), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    out = overlay_mask(images, masks, color=(1.0, 0.0, 0.0), opacity=0.5)
    assert out[0, :, 0, 0].tolist() == [0.5, 0.0, 0.0] and out[0, :, 1, 1].tolist() == [0.0, 0.0, 0.0]


def test_loss_curves_read_a_csv_log_and_split_generator_and_discriminator(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,step,train/d_total,train/g_total,train/lr\n0,9,0.5,3.0,0.1\n0,19,,2.0,0.1\n0,29,0.4,1.0,0.1\n")
    curves = read_loss_log(log)
    assert curves["train/g_total"] == [(9, 3.0), (19, 2.0), (29, 1.0)] and curves["train/d_total"] == [(9, 0.5),
                                                                                                        (29, 0.4)]
    fig = loss_curves(log, title="t")
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [1, 1]
    with pytest.raises(ValueError, match="no loss columns"):
        loss_curves({"train/lr": [(0, 1.0)]})


def test_bar_chart_single_and_grouped():
    fig = bar_chart({"road": 0.5, "car": 0.25}, ylabel="IoU")
    assert [p.get_height() for p in fig.axes[0].patches] == [0.5, 0.25]
    fig = bar_chart({"a": {"road": 0.5, "car": 0.25}, "b": {"road": 0.75, "car": 0.1}})
    assert sorted(p.get_height() for p in fig.axes[0].patches) == [0.1, 0.25, 0.5, 0.75]
