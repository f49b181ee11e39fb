"""course.marker: the marker task, MarkerNet and its training loop."""

import pytest
import torch

from notebooks.course import marker
from notebooks.course import gradients

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: threads only add overhead


def test_marker_batch_labels_come_from_the_marker():
    x, y = marker.marker_batch(20, size=10, classes=3, marker=2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (20, 4, 10, 10) and y.shape == (20, 10, 10)
    for b in range(20):
        k = y[b, 0, 0].item()
        assert (y[b] == k).all()
        assert x[b, 1 + k].sum() == 4 and x[b, 1:].sum() == 4   # one 2x2 marker, in its class channel
    assert 0 <= x[:, 0].min() and x[:, 0].max() <= 1
    with pytest.raises(ValueError):
        marker.marker_batch(2, size=1, marker=2)


def test_marker_net_and_training_loop():
    for ctx in marker.MARKER_CONTEXTS:
        assert marker.MarkerNet(ctx, classes=3, width=8)(torch.rand(2, 4, 8, 8)).shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match="context"):
        marker.MarkerNet("pooling")
    cfg = marker.MarkerConfig(context="one-step", size=8, width=8, iters=6, eval_every=3, test_images=16, batch=4)
    r1, r2 = marker.train_marker(cfg), marker.train_marker(cfg)
    assert r1["iters"] == [3, 6] and len(r1["accuracy"]) == 2
    assert r1["accuracy"] == r2["accuracy"]   # seeded: the same run twice
    assert not r1["model"].training
    fig = gradients.draw_training([r1], chance=0.25)
    assert len(fig.axes) == 1
