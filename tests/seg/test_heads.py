"""Heads: the HamNet head as the reference, Light-Ham, the swappable context blocks."""

import pytest
import torch
import torch.nn as nn

from hamlib import Hamburger, SelfAttention2d
from hamlib.context import PoolContext
from hamlib.seg.heads import HamNetHead, HeadConfig, LightHamHead
from hamlib.seg.model import ModelConfig, build_model, count_params


def test_hamnet_head_is_the_reference():
    head = HamNetHead([256, 512, 1024, 2048], 21, HeadConfig())
    sq, al = head.squeeze[0], head.align[0]
    assert (sq.in_channels, sq.out_channels, sq.kernel_size) == (2048, 512, (3, 3))
    assert (al.in_channels, al.out_channels, al.kernel_size) == (512, 256, (3, 3))
    ham = head.context
    assert isinstance(ham, Hamburger) and ham.version == "v2" and ham.ham_kind == "nmf"
    assert (ham.ham.rank, ham.ham.steps, ham.ham.d) == (64, 6, 512)
    assert isinstance(head.dropout, nn.Dropout2d) and head.dropout.p == 0.1
    assert (head.classifier.in_channels, head.classifier.out_channels) == (256, 21)
    out = head.eval()([torch.randn(2, 2048, 5, 5)])
    assert out.shape == (2, 21, 5, 5)


@pytest.mark.parametrize("context,kind", [("none", nn.Identity), ("attention", SelfAttention2d),
                                          ("pool", PoolContext), ("ham", Hamburger)])
def test_context_blocks(context, kind):
    cfg = HeadConfig(context=context, channels=32, align_channels=16, ham=dict(ham="cd", rank=4, grad="bptt"))
    m = build_model(ModelConfig("resnet_tiny", dict(width=16), cfg, num_classes=5))
    assert isinstance(m.head.context, kind)
    if context == "ham":
        assert m.head.context.ham_kind == "cd" and m.head.context.ham.grad == "bptt"
    x = torch.randn(2, 3, 40, 48)
    y = m(x)
    assert y.shape == (2, 5, 40, 48)
    y.sum().backward()
    assert all(p.grad is not None for p in m.head.parameters())


def test_bad_head_options():
    with pytest.raises(ValueError, match="context"):
        HamNetHead([64], 5, HeadConfig(context="transformer"))
    with pytest.raises(ValueError, match="head kind"):
        build_model(ModelConfig("resnet_tiny", {}, HeadConfig(kind="fpn"), 5))
    with pytest.raises(ValueError, match="backbone"):
        build_model(ModelConfig("vgg16", {}, HeadConfig(), 5))


def test_lightham_head():
    cfg = HeadConfig(kind="lightham", channels=64, align_channels=32, norm="gn", ham=dict(rank=16, steps=6))
    head = LightHamHead([16, 32, 64, 128], 7, cfg)
    assert head.in_index == [1, 2, 3]
    assert head.squeeze[0].in_channels == 32 + 64 + 128 and head.squeeze[0].kernel_size == (1, 1)
    ham = head.context
    assert ham.version == "v1" and ham.ham.rank == 16 and isinstance(ham.upper_norm, nn.GroupNorm)
    feats = [torch.randn(2, 16, 16, 16), torch.randn(2, 32, 8, 8), torch.randn(2, 64, 4, 4), torch.randn(2, 128, 2, 2)]
    assert head.eval()(feats).shape == (2, 7, 8, 8)


def test_param_counts_order():
    counts = {c: count_params(build_model(ModelConfig("resnet_tiny", dict(width=16),
                                                      HeadConfig(context=c, channels=64, align_channels=32, kernel=1),
                                                      5)))
              for c in ("none", "pool", "ham", "attention")}
    # none < pool (one 64x64 conv) < ham (two 64x64 convs + cheese) < attention (4 C^2)
    assert counts["none"] < counts["pool"] < counts["ham"] < counts["attention"]
    assert counts["pool"] - counts["none"] == 64 * 64 + 64
