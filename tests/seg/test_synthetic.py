"""The colour-by-legend task: seeded, well-formed, and out of a no-context model's reach."""

import pytest
import torch

from hamlib.seg.heads import HeadConfig
from hamlib.seg.model import ModelConfig, build_model
from hamlib.seg.synthetic import LegendConfig, LegendDataset, make_legend_dataset


def test_seeded():
    a, la = make_legend_dataset(8, seed=3)
    b, lb = make_legend_dataset(8, seed=3)
    c, _ = make_legend_dataset(8, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)
    assert a.shape == (8, 3, 64, 64) and la.shape == (8, 64, 64) and a.dtype == torch.float32


@pytest.mark.parametrize("one_colour", [False, True])
def test_gray_shapes_are_far_from_the_legend_and_take_its_colours(one_colour):
    cfg = LegendConfig(size=64, min_dist=36, one_colour=one_colour)
    ds = LegendDataset(40, seed=0, cfg=cfg)
    assert ds.labels.min() == 0 and ds.labels.max() <= cfg.n_colours
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    for lab, ctx in zip(ds.labels, ds.needs_context):
        legend = (lab > 0) & ~ctx
        assert ctx.any() and legend.sum() > 0
        # every gray-shape pixel is at Chebyshev distance >= min_dist from every legend pixel
        ly, lx, gy, gx = ys[legend], xs[legend], ys[ctx], xs[ctx]
        d = torch.maximum((gy[:, None] - ly[None]).abs(), (gx[:, None] - lx[None]).abs())
        assert d.min() >= cfg.min_dist
        # a gray shape's class is one of the legend's colours (the only one, with one_colour)
        legend_classes = set(lab[legend].tolist())
        assert set(lab[ctx].tolist()) <= legend_classes
        if one_colour:
            assert len(legend_classes) == 1


def test_no_context_model_cannot_see_the_legend():
    """The quick config's network without context: the logits at gray-shape pixels have exactly
    zero gradient with respect to every legend pixel; with self-attention they do not."""
    ds = LegendDataset(4, seed=1, cfg=LegendConfig(size=64, min_dist=36))
    for context, zero in (("none", True), ("attention", False)):
        torch.manual_seed(0)
        head = HeadConfig(context=context, channels=32, align_channels=16, kernel=1)
        m = build_model(ModelConfig("resnet_tiny", dict(width=16), head, 5)).eval()
        x = ds.images.clone().requires_grad_(True)
        logits = m(x)
        (logits * ds.needs_context[:, None]).sum().backward()
        legend = (ds.labels > 0) & ~ds.needs_context
        g = x.grad.abs().sum(1)[legend]
        assert (g.max() == 0) == zero, context


def test_bad_config():
    with pytest.raises(ValueError, match="too small"):
        make_legend_dataset(2, cfg=LegendConfig(size=40, min_dist=36))
    with pytest.raises(ValueError, match="n_colours"):
        make_legend_dataset(2, cfg=LegendConfig(n_colours=9))
