"""Attention baselines: shapes, parameters, and the maths against a written-out softmax."""

import pytest
import torch

import hamlib


@pytest.mark.parametrize("heads", [1, 4])
def test_self_attention_matches_explicit_softmax(heads):
    torch.manual_seed(0)
    C, H, W = 16, 3, 4
    m = hamlib.SelfAttention2d(C, heads=heads)
    x = torch.randn(2, C, H, W)
    A = m.attention_map(x)                                     # (B, heads, N, N)
    assert A.shape == (2, heads, H * W, H * W)
    torch.testing.assert_close(A.sum(-1), torch.ones(2, heads, H * W))
    v = m.qkv(x).chunk(3, dim=1)[2].reshape(2, heads, C // heads, H * W)   # (B, heads, c, N)
    o = (v @ A.mT).reshape(2, C, H, W)
    torch.testing.assert_close(m(x), x + m.gamma * m.proj(o), rtol=1e-4, atol=1e-5)


def test_self_attention_parameters():
    C = 512
    m = hamlib.SelfAttention2d(C)
    n = sum(p.numel() for p in m.parameters())
    assert n == 4 * C * C + 4 * C + 1
    assert round(n / 1e6, 2) == 1.05  # the paper's table says 1.00M for its self-attention block


def test_self_attention_gate_and_errors():
    x = torch.randn(1, 8, 3, 3)
    assert torch.equal(hamlib.SelfAttention2d(8, gamma_init=0.0)(x), x)
    with pytest.raises(ValueError, match="does not divide"):
        hamlib.SelfAttention2d(8, heads=3)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        hamlib.SelfAttention2d(8)(torch.randn(8, 3, 3))


def test_self_attention_in_the_hamburger_template():
    """norm=...: out = ReLU(x + norm(O(attn))), no gamma; the heads' "attention" uses this form."""
    torch.manual_seed(0)
    m = hamlib.SelfAttention2d(8, norm="bn").eval()
    plain = hamlib.SelfAttention2d(8)
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("norm.")}, strict=False)
    x = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(m(x), torch.relu(x + m.norm(plain(x) - x)))
    assert not hasattr(m, "gamma") and (m(x) >= 0).all()
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in plain.parameters()) - 1 + 2 * 8
    assert isinstance(hamlib.context_block("attention", 8).norm, torch.nn.BatchNorm2d)
    assert isinstance(hamlib.context_block("attention", 8, norm="gn").norm, torch.nn.GroupNorm)
    assert hamlib.context_block("attention-plain", 8).norm is None


def test_non_local_starts_as_identity_and_learns():
    torch.manual_seed(0)
    m = hamlib.NonLocal2d(8)
    x = torch.randn(2, 8, 4, 4)
    assert torch.equal(m(x), x)
    m(x).square().sum().backward()
    assert m.norm.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        m(torch.randn(8, 4, 4))
