"""course.segmentation: the legend task's examples and each head's predictions, as Figures."""

import numpy as np
import torch

from hamlib import analysis
from matplotlib.figure import Figure

from hamlib.seg.model import build_model
from hamlib.seg.synthetic import COLOURS, LegendConfig, LegendDataset
from hamlib.seg.train import quick
from notebooks.course import segmentation


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


def _models(heads):
    from notebooks.course.legend import with_head
    out = {}
    for h in heads:
        torch.manual_seed(0)
        out[h] = build_model(with_head(quick(), h).model).eval()
    return out


def test_context_influence_reads_the_forward_pass_of_every_head():
    ds = LegendDataset(2, seed=0, cfg=LegendConfig())
    ms = _models(["none", "pool", "nmf one-step", "nmf bptt"])
    assert analysis.context_influence(ms["none"], ds.images[0], 10, 20) is None
    J = {h: analysis.context_influence(ms[h], ds.images[0], 10, 20) for h in ["pool", "nmf one-step", "nmf bptt"]}
    r, c = 10 * 8 // 64, 20 * 8 // 64                     # the query's cell on the 8 x 8 map
    for h, m in J.items():
        assert m.shape == (8, 8) and m[r, c] == 0, h
        assert (m > 0).sum() > 32, f"{h}: other cells should move the query cell's output"
    # one-step and BPTT differ only in the backward pass: measured through BPTT, the same map
    torch.testing.assert_close(J["nmf one-step"], J["nmf bptt"])
    # pooling: the query cell reads every other cell through the mean, equally
    off = J["pool"][J["pool"] > 0]
    torch.testing.assert_close(off, torch.full_like(off, off.mean().item()))


def test_pixel_panel_shows_predictions_and_what_each_block_reads():
    ds = LegendDataset(2, seed=0, cfg=LegendConfig())
    fig = segmentation.draw_pixel_panel(_models(["none", "nmf bptt"]), ds, 1, 5, 60)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["image 1", "none", "nmf bptt"] and "truth" in titles
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_pixel_controls_redraw_on_release_only():
    c = segmentation.pixel_controls(n_images=16, size=64)
    assert list(c) == ["image", "row", "col"]             # draw_pixel_panel's arguments after the data set
    assert all(w.continuous_update is False for w in c.values()), "a 2 s redraw must not run on every slider step"
    assert (c["image"].max, c["row"].max, c["col"].max) == (15, 63, 63)
    assert all(w.min <= w.value <= w.max for w in c.values())
