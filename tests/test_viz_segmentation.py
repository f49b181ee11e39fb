"""hamlib.viz.segmentation: the legend task's examples and each head's predictions, as Figures."""

import numpy as np
import torch
from matplotlib.figure import Figure

from hamlib.seg.model import build_model
from hamlib.seg.synthetic import COLOURS, LegendConfig, LegendDataset
from hamlib.seg.train import quick
from hamlib.viz import segmentation


def test_examples_and_predictions_panels():
    ds = LegendDataset(4, seed=0, cfg=LegendConfig())
    torch.manual_seed(0)
    m = build_model(quick().model)
    fig = segmentation.draw_predictions({"a": m, "b": m}, ds, [0, 1])
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "truth", "a", "b"]
    assert len(segmentation.draw_examples(ds, 3).axes) == 6


def test_one_colour_map_and_the_images_scale():
    ds = LegendDataset(2, seed=0, cfg=LegendConfig())
    style = segmentation.label_style(ds)
    n = ds.cfg.n_colours
    assert style["vmin"] == 0 and style["vmax"] == n and style["cmap"].N == n + 1
    assert np.allclose(style["cmap"](n)[:3], COLOURS[n - 1])              # class k in legend colour k
    img = segmentation.image_of(ds, 0)
    assert img.shape == (*ds.labels.shape[1:], 3) and img.min() >= 0 and img.max() <= 1
