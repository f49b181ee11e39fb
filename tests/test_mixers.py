"""hamlib.mixers: shapes, the shared input checks, what each mixer can see (Jacobians), the transformer."""

import pytest
import torch

from hamlib.mixers import MIXERS, HamMixer, LinearAttention, SeqTransformer, SoftmaxAttention, make_mixer

torch.set_num_threads(1)


def _jac(m, N=6, C=8):
    m.eval()
    x = torch.randn(1, N, C, generator=torch.Generator().manual_seed(0))
    J = torch.autograd.functional.jacobian(m, x)[0, :, :, 0]          # (N, C, N, C)
    return J.pow(2).sum(dim=(1, 3)).sqrt()                             # (N, N)


@pytest.mark.parametrize("name", MIXERS)
def test_shape_and_backward(name):
    m = make_mixer(name, 8, 32, **({"rank": 4} if name in ("nmf", "cd", "vq") else {"heads": 2} if name in ("attention", "linear") else {}))
    x = torch.randn(3, 10, 8, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", MIXERS)
def test_bad_inputs_named(name):
    m = make_mixer(name, 8, 16)
    with pytest.raises(ValueError, match=r"\(B, N, C\).*4|flatten"):
        m(torch.randn(2, 8, 4, 4))                                     # a feature map
    with pytest.raises(ValueError, match="transpose it to"):
        m(torch.randn(2, 8, 5))                                        # (B, C, N)
    with pytest.raises(ValueError, match="max_len = 16"):
        m(torch.randn(2, 17, 8))
    with pytest.raises(ValueError, match="N = 0"):
        m(torch.randn(2, 0, 8))
    with pytest.raises(ValueError, match="floating"):
        m(torch.ones(2, 4, 8, dtype=torch.long))


def test_unknown_mixer():
    with pytest.raises(ValueError, match="unknown mixer 'conv'"):
        make_mixer("conv", 8, 16)


def test_linear_attention_matches_its_quadratic_form():
    m = LinearAttention(8, 32, heads=2).eval()
    x = torch.randn(2, 7, 8)
    q, k, v = m.qkv(x).chunk(3, -1)
    out = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        fq, fk = torch.nn.functional.elu(q[..., sl]) + 1, torch.nn.functional.elu(k[..., sl]) + 1
        A = fq @ fk.mT                                                 # (B, N, N), the rank-4 kernel
        out.append((A / A.sum(-1, keepdim=True)) @ v[..., sl])
    ref = m.proj(torch.cat(out, -1))
    torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-5)


def test_who_sees_whom():
    torch.manual_seed(0)
    J = _jac(make_mixer("identity", 8, 16))
    assert torch.equal(J > 0, torch.eye(6, dtype=torch.bool))         # only itself
    J = _jac(SoftmaxAttention(8, 16, heads=2, causal=True))
    low = torch.ones(6, 6, dtype=torch.bool).tril()
    assert (J[~low] == 0).all() and (J[low] > 0).all()                # causal: j <= i only
    for name in ("nmf", "cd", "vq", "attention", "mean"):
        J = _jac(make_mixer(name, 8, 16, **({"rank": 3} if name in ("nmf", "cd", "vq") else {})))
        assert (J.triu(1) > 0).any(), name                             # token i reads j > i: not causal


def test_ham_mixer_uses_the_bnc_solver():
    m = HamMixer(8, 16, ham="cd", rank=3, d=12, grad="one-step")
    assert m.ham.layout == "bnc" and m.ham.rank == 3 and m.ham.grad == "one-step" and m.d == 12
    with pytest.raises(ValueError, match="ham must be one of"):
        HamMixer(8, 16, ham="pca")


def test_transformer_readouts_and_length():
    tok = SeqTransformer(20, 5, mixer="nmf", channels=16, max_len=12, fields=2, rank=4)
    x = torch.randint(0, 20, (3, 10, 2))
    assert tok(x).shape == (3, 10, 5)
    vec = SeqTransformer(("vector", 4), 7, mixer="linear", channels=16, max_len=12, readout="first")
    assert vec(torch.randn(3, 9, 4)).shape == (3, 7)
    with pytest.raises(ValueError, match="max_len = 12"):
        vec(torch.randn(1, 13, 4))
    with pytest.raises(ValueError, match="readout"):
        SeqTransformer(20, 5, readout="mean")
