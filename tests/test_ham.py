"""Hamburger blocks: each version's computation written out by hand, parameter counts against
the reference's constructors, init (spectral norm at construction), state, errors."""

import math

import pytest
import torch

import hamlib
from hamlib.layers import ConditionalBatchNorm2d, conv_weight, count_params


# ---------------------------------------------------------------------------
# The block's computation, written out (float64, eval mode: the ham's bases are fixed)
# ---------------------------------------------------------------------------


def conv1x1(conv, x):
    """A 1x1 conv as a matrix product: W (out, in) @ x (B, in, H, W) (+ b)."""
    y = torch.einsum("oi,bihw->bohw", conv.weight.flatten(1), x)   # .weight: effective (spectral-normalised) weight
    return y if conv.bias is None else y + conv.bias[:, None, None]


def bn_eval(bn, x, gamma=None, beta=None):
    """BatchNorm with running statistics: gamma * (x - mean) / sqrt(var + eps) + beta."""
    gamma = bn.weight[:, None, None] if gamma is None else gamma
    beta = bn.bias[:, None, None] if beta is None else beta
    return gamma * (x - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps) + beta


def randomise(m):
    """Non-trivial norms, gates and sigma, so that each term of the formula shows in the output."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g, dtype=torch.float64))
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g, dtype=torch.float64) + 0.5)
                if mod.affine:
                    mod.weight.copy_(torch.randn(mod.num_features, generator=g, dtype=torch.float64))
                    mod.bias.copy_(torch.randn(mod.num_features, generator=g, dtype=torch.float64))
            if isinstance(mod, ConditionalBatchNorm2d):
                mod.gamma.weight.copy_(torch.randn(mod.gamma.weight.shape, generator=g, dtype=torch.float64))
                mod.beta.weight.copy_(torch.randn(mod.beta.weight.shape, generator=g, dtype=torch.float64))
            if isinstance(mod, torch.nn.Conv2d) and mod.bias is not None:
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g, dtype=torch.float64))
        for name in ("gate_ham", "sigma"):
            if hasattr(m, name):
                getattr(m, name).fill_(0.7)
        if hasattr(m, "gate_x"):
            m.gate_x.fill_(-0.4)
    return m


def by_hand(m, x, y=None):
    """The block, formula by formula; ham(.) is the block's own ham module."""
    z = conv1x1(m.lower_bread[0], x)
    if m.ham_kind == "nmf":
        z = torch.relu(z)
    if m.dual:
        d = z.shape[1] // 2
        Z = torch.cat([m.ham(z[:, :d]), m.ham_channel(z[:, d:])], dim=1)
    else:
        Z = m.ham(z)
    if m.version == "v1":                                   # relu(x + BN(W_up Z))
        return torch.relu(x + bn_eval(m.upper_norm, conv1x1(m.upper_bread, Z)))
    if m.version in ("v2", "v2+"):                          # W_up relu(BN(W_ch Z))
        path = conv1x1(m.upper_bread, torch.relu(bn_eval(m.cheese[1], conv1x1(m.cheese[0], Z))))
        if m.version == "v2":
            return torch.relu(x + path)
        return torch.relu(m.gate_ham * path + m.gate_x * x)
    path = conv1x1(m.upper_bread, Z)                        # gan: x + sigma * CBN(W_up Z)
    if y is not None:
        cbn = m.upper_norm
        path = bn_eval(cbn.bn, path, cbn.gamma(y)[:, :, None, None], cbn.beta(y)[:, :, None, None])
    return x + m.sigma * path


CASES = [("v1", "nmf", {}), ("v1", "cd", {}), ("v2", "nmf", {}), ("v2", "vq", {}),
         ("v2+", "nmf", {}), ("v2+", "cd", dict(groups=2)), ("gan", "nmf", {}),
         ("gan", "cd", dict(num_classes=3))]


@pytest.mark.parametrize("version,ham,kw", CASES, ids=[f"{v}-{h}-{len(k)}" for v, h, k in CASES])
def test_block_matches_its_formula(version, ham, kw):
    torch.manual_seed(0)
    C, d = 6, 4
    m = randomise(hamlib.Hamburger(C, ham=ham, version=version, d=d, rank=2, steps=3, **kw).double().eval())
    x = torch.randn(2, C, 3, 4, dtype=torch.float64)
    y = torch.tensor([0, 2]) if "num_classes" in kw else None
    with torch.no_grad():
        out = m(x) if y is None else m(x, y)
        torch.testing.assert_close(out, by_hand(m, x, y), rtol=1e-12, atol=1e-12)
        assert (out - x).abs().max() > 0.1                  # the path shows in the output


def test_dual_block_matches_its_formula():
    torch.manual_seed(0)
    m = randomise(hamlib.Hamburger(6, version="v2+", d=4, rank=2, steps=3, dual=True, groups=2).double().eval())
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), by_hand(m, x), rtol=1e-12, atol=1e-12)


def reference_nmf(x, bases, steps):
    """The reference's NMF2D on x (B', D, N) from bases (B', D, R) (seg/HamNet/hamburger/ham.py)."""
    coef = torch.softmax(x.mT @ bases, dim=-1)                                  # (B', N, R)
    for _ in range(steps + 1):                                                  # K steps + compute_coef
        coef = coef * (x.mT @ bases) / (coef @ (bases.mT @ bases) + 1e-6)
        if _ < steps:
            bases = bases * (x @ coef) / (bases @ (coef.mT @ coef) + 1e-6)
    return bases @ coef.mT                                                      # (B', D, N)


def test_dual_block_matches_the_reference_v2plus():
    # HamburgerV2Plus(DUAL=True, MD_S=S, MD_D=D), written out: both halves view their input as
    # (B*S, D, H*W); the spatial half decomposes it, the channel half its transpose; the
    # cheese maps 2SD -> D. Training mode: fresh bases from the global RNG, in the same order.
    B, C, S, D, R, K, H, W = 2, 6, 2, 3, 2, 3, 3, 4
    torch.manual_seed(0)
    m = randomise(hamlib.Hamburger(C, version="v2+", d=S * D, groups=S, rank=R, steps=K, dual=True).double())
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    with torch.no_grad():
        torch.manual_seed(5)
        out = m(x)
        torch.manual_seed(5)
        z = torch.relu(conv1x1(m.lower_bread[0], x))                           # (B, 2SD, H, W)
        z1, z2 = z[:, :S * D].reshape(B * S, D, H * W), z[:, S * D:].reshape(B * S, D, H * W).mT
        bases1 = torch.nn.functional.normalize(torch.rand(B * S, D, R), dim=1).double()
        bases2 = torch.nn.functional.normalize(torch.rand(B * S, H * W, R), dim=1).double()
        Z = torch.cat([reference_nmf(z1, bases1, K).reshape(B, S * D, H, W),
                       reference_nmf(z2, bases2, K).mT.reshape(B, S * D, H, W)], dim=1)
        h = conv1x1(m.cheese[0], Z)                                             # (B, D, H, W)
        assert h.shape[1] == D
        bn = m.cheese[1]
        mean, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
        h = torch.relu(bn.weight[:, None, None] * (h - mean) / torch.sqrt(var + bn.eps) + bn.bias[:, None, None])
        want = torch.relu(m.gate_ham * conv1x1(m.upper_bread, h) + m.gate_x * x)
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)


def test_dual_channel_half_decomposes_each_heads_channels():
    # the reference views the channel half as (B*S, C/S, H*W) and decomposes its transpose:
    # each head's channels are the columns (so permuting them permutes the output), and a
    # head never sees another head's channels
    torch.manual_seed(0)
    m = hamlib.Hamburger(8, version="v2+", d=8, rank=2, steps=3, dual=True, groups=2).double().eval()
    assert (m.ham_channel.groups, m.ham.groups) == (2, 2)
    z = torch.rand(2, 8, 3, 4, dtype=torch.float64)
    out = m.ham_channel(z)
    perm = torch.tensor([2, 0, 3, 1, 4, 5, 6, 7])                 # within head 0
    torch.testing.assert_close(m.ham_channel(z[:, perm]), out[:, perm], rtol=1e-10, atol=1e-12)
    z2 = z.clone()
    z2[:, :4] = torch.rand(2, 4, 3, 4, dtype=torch.float64)          # change head 0 only
    torch.testing.assert_close(m.ham_channel(z2)[:, 4:], out[:, 4:], rtol=0, atol=0)


def test_eval_steps_is_used_in_eval_only():
    torch.manual_seed(0)
    x = torch.rand(1, 6, 3, 3, dtype=torch.float64)
    a = hamlib.Hamburger(6, version="v1", d=4, rank=2, steps=1, eval_steps=5).double()
    b = hamlib.Hamburger(6, version="v1", d=4, rank=2, steps=1, eval_steps=1).double()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert not torch.allclose(a.eval()(x), b.eval()(x))
        torch.manual_seed(3); ta = a.train()(x)
        torch.manual_seed(3); tb = b.train()(x)
    torch.testing.assert_close(ta, tb, rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Parameter counts: the reference's constructors, counted by hand
# ---------------------------------------------------------------------------


def reference_params(version, in_c, S, D, dual=False, num_classes=None):
    """Parameters of the reference block with MD_S = S and MD_D = D
    (seg/HamNet/hamburger/burger.py; gan/HamGAN/ops.py sn_hamburger_v1 for "gan")."""
    if version in ("v1", "v2"):
        C = D                                           # lower bread: in_c -> MD_D, with bias
        lower, upper = in_c * C + C, C * in_c
        if version == "v1":
            return lower + upper + 2 * in_c            # upper BN
        return lower + (C * C + 2 * C) + upper          # cheese: conv (no bias) + BN
    if version == "v2+":
        C = S * D * (2 if dual else 1)
        out = C // (S * (2 if dual else 1))             # cheese: C -> C // CHEESE_FACTOR
        return (in_c * C + C) + (C * out + 2 * out) + out * in_c + 2   # + coef_ham, coef_shortcut
    if version == "gan":
        C = S * D                                       # sn_conv1x1: no bias
        return in_c * C + C * in_c + 1 + (2 * in_c * num_classes if num_classes else 0)
    raise AssertionError(version)


@pytest.mark.parametrize("version,in_c,S,D,extra", [
    ("v1", 12, 1, 8, {}), ("v1", 12, 2, 8, {}), ("v2", 10, 2, 6, {}),
    ("v2+", 12, 1, 8, {}), ("v2+", 12, 2, 4, {}), ("v2+", 12, 2, 4, dict(dual=True)),
    ("v2+", 16, 4, 2, dict(dual=True)), ("gan", 12, 1, 8, {}), ("gan", 12, 2, 4, dict(num_classes=5))])
def test_parameter_count_matches_the_reference(version, in_c, S, D, extra):
    d = D if version in ("v1", "v2") else S * D           # hamlib's d is the whole ham width
    m = hamlib.Hamburger(in_c, version=version, d=d, groups=S, rank=2, steps=1, **extra)
    assert count_params(m) == reference_params(version, in_c, S, D, **extra)


@pytest.mark.parametrize("ham", ["nmf", "vq", "cd"])
@pytest.mark.parametrize("version", ["v1", "v2", "v2+", "gan"])
def test_shapes(ham, version):
    m = hamlib.Hamburger(24, ham=ham, version=version, d=16, rank=4, steps=2)
    x = torch.rand(2, 24, 5, 6)
    assert m(x).shape == x.shape


# ---------------------------------------------------------------------------
# Init, gates, state
# ---------------------------------------------------------------------------


def spectral_norms(module):
    """Largest singular value of every spectrally-normalised weight, by module name."""
    return {n: torch.linalg.matrix_norm(m.weight.detach().flatten(1), 2).item()
            for n, m in module.named_modules() if hasattr(m, "parametrizations")}


def test_gan_block_is_spectrally_normalised_at_construction():
    torch.manual_seed(0)
    for kw in (dict(d=64), dict(d=32, num_classes=10)):
        m = hamlib.Hamburger(64, version="gan", rank=4, **kw).eval()   # no warm-up forward
        norms = spectral_norms(m)
        assert set(norms) == {"lower_bread.0", "upper_bread"}
        assert all(abs(s - 1) < 0.05 for s in norms.values()), norms


def test_gan_variant_with_class_conditional_norm():
    C, d, K = 16, 8, 10
    m = hamlib.Hamburger(C, version="gan", d=d, rank=4, num_classes=K)
    assert isinstance(m.upper_norm, ConditionalBatchNorm2d)
    x, y = torch.randn(3, C, 4, 4), torch.tensor([0, 4, 9])
    assert torch.equal(m(x, y), x)  # sigma = 0: the block starts as the identity
    with pytest.raises(ValueError, match="labels y"):
        m(x)


def test_v2plus_gates_start_closed():
    m = hamlib.Hamburger(8, version="v2+", d=8, rank=2)
    x = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(m(x), torch.relu(x))  # a = 0, b = 1 at init


def test_reference_init():
    m = hamlib.Hamburger(256, version="v2", d=256, rank=8, init="reference")
    w = m.lower_bread[0].weight
    assert abs(w.std().item() / math.sqrt(2 / 256) - 1) < 0.05
    assert (m.lower_bread[0].bias == 0).all()
    bn = m.cheese[1]
    assert (bn.weight == 1).all() and (bn.bias == 0).all()
    g = hamlib.Hamburger(256, version="gan", d=256, rank=8)   # Glorot-uniform, as the TF reference
    w = conv_weight(g.upper_bread)
    assert w.abs().max() <= math.sqrt(6 / 512) and abs(w.std().item() / math.sqrt(2 / 512) - 1) < 0.05
    assert g.lower_bread[0].bias is None and g.upper_bread.bias is None
    with pytest.raises(ValueError, match="parametrized"):
        hamlib.layers.reference_init(g)


def test_pytorch_init_keeps_torch_defaults():
    torch.manual_seed(0)
    m = hamlib.Hamburger(256, version="v2", d=256, rank=8, init="pytorch")
    torch.manual_seed(0)
    default = hamlib.Hamburger(256, version="v2", d=256, rank=8)      # the default since issue 23
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), default.parameters()))
    w, b = m.lower_bread[0].weight, m.lower_bread[0].bias
    bound = 1 / math.sqrt(256)          # kaiming-uniform with a = sqrt(5): U(+-1/sqrt(fan_in)), biases too
    assert w.abs().max() <= bound and abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.05
    assert (b != 0).all() and b.abs().max() <= bound
    with pytest.raises(ValueError, match="init must be one of"):
        hamlib.Hamburger(8, init="xavier")


@pytest.mark.parametrize("bases", ["random", "learned"])
def test_state_dict_round_trip_and_deterministic_eval(bases, tmp_path):
    torch.manual_seed(0)
    m = hamlib.Hamburger(16, version="v2", d=8, rank=4, bases=bases)
    x = torch.rand(2, 16, 5, 5)
    for _ in range(3):
        m.train()(x).sum().backward()  # change BN statistics and learned bases
    m.eval()
    with torch.no_grad():
        a, b = m(x), m(x)
    assert torch.equal(a, b)
    torch.save(m.state_dict(), tmp_path / "ham.pt")
    m2 = hamlib.Hamburger(16, version="v2", d=8, rank=4, bases=bases)
    m2.load_state_dict(torch.load(tmp_path / "ham.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(m2.eval()(x), a)


def test_every_parameter_gets_a_gradient():
    m = hamlib.Hamburger(16, version="v2", d=8, rank=4)
    m(torch.rand(2, 16, 4, 4)).square().sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_autocast_block_runs_in_bf16():
    m = hamlib.Hamburger(16, version="v2", d=8, rank=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(torch.rand(2, 16, 4, 4))
    assert torch.isfinite(y).all()


def test_block_errors():
    with pytest.raises(ValueError, match="ham must be one of"):
        hamlib.Hamburger(8, ham="pca")
    with pytest.raises(ValueError, match="version must be one of"):
        hamlib.Hamburger(8, version="v3")
    with pytest.raises(ValueError, match="dual"):
        hamlib.Hamburger(8, version="v2", dual=True)
    with pytest.raises(ValueError, match="num_classes"):
        hamlib.Hamburger(8, version="v2", num_classes=10)
    with pytest.raises(ValueError, match="does not divide"):
        hamlib.Hamburger(8, d=8, groups=3)
    with pytest.raises(ValueError, match="norm must be"):
        hamlib.Hamburger(8, norm="layer")
    with pytest.raises(ValueError, match="built for"):
        hamlib.Hamburger(8, d=8)(torch.rand(1, 6, 4, 4))
    for dtype in (torch.long, torch.uint8, torch.bool):
        with pytest.raises(ValueError, match=f"floating-point input, got {dtype}"):
            hamlib.Hamburger(8, d=8)(torch.ones(1, 8, 4, 4, dtype=dtype))


def test_context_block_builds_every_context_and_names_the_vocabulary():
    from hamlib.context import CONTEXTS, PoolContext
    kinds = {"none": torch.nn.Identity, "pool": PoolContext, "attention": hamlib.SelfAttention2d,
             "attention-plain": hamlib.SelfAttention2d, "ham": hamlib.Hamburger,
             "plain": hamlib.minimal.MinimalHamburger}
    assert set(kinds) == set(CONTEXTS)
    x = torch.rand(2, 8, 5, 5)
    for kind in CONTEXTS:
        block = hamlib.context_block(kind, 8, ham="nmf", version="v2", rank=2, steps=2).eval()
        assert type(block) is kinds[kind] and block(x).shape == x.shape
    gan = hamlib.context_block("attention", 8, version="gan")       # SAGAN's: gate at 0, spectral norm
    assert gan.norm is None and gan.gamma.item() == 0 and hasattr(gan.qkv, "parametrizations")
    assert torch.equal(gan(x), x)
    cond = hamlib.context_block("ham", 8, num_classes=3, version="gan", rank=2, steps=2)
    assert cond(x, torch.tensor([0, 2])).shape == x.shape
    with pytest.raises(ValueError, match="'sa' is now 'attention'"):
        hamlib.context_block("sa", 8)
    with pytest.raises(ValueError, match="context must be one of"):
        hamlib.context_block("transformer", 8)


class _PlainV1(torch.nn.Module):
    """The v1 NMF block written plainly (1x1 conv + ReLU, NMF by BPTT with fresh bases, 1x1 conv + BN,
    ReLU(x + .)), as users write it: the reference hamlib's v1 must equal (issue 23)."""

    def __init__(self, C, d, r, K=6):
        super().__init__()
        self.lower, self.upper = torch.nn.Conv2d(C, d, 1), torch.nn.Conv2d(d, C, 1, bias=False)
        self.bn, self.r, self.K = torch.nn.BatchNorm2d(C), r, K

    def forward(self, x):
        B, C, H, W = x.shape
        X = torch.relu(self.lower(x)).reshape(B, -1, H * W)                   # (B, d, N)
        D = torch.nn.functional.normalize(torch.rand(B, X.shape[1], self.r), dim=1)
        Cm = torch.softmax(X.mT @ D, dim=-1)                                   # (B, N, r)
        for _ in range(self.K):
            Cm = Cm * (X.mT @ D) / (Cm @ (D.mT @ D) + 1e-6)
            D = D * (X @ Cm) / (D @ (Cm.mT @ Cm) + 1e-6)
        Cm = Cm * (X.mT @ D) / (Cm @ (D.mT @ D) + 1e-6)
        return torch.relu(x + self.bn(self.upper((D @ Cm.mT).reshape(B, -1, H, W))))


def test_v1_equals_the_plain_v1_forward_backward_and_after_training_steps():
    torch.manual_seed(0)
    ham = hamlib.Hamburger(16, ham="nmf", version="v1", rank=4, init="pytorch")
    plain = _PlainV1(16, 16, 4)
    plain.lower.load_state_dict(ham.lower_bread[0].state_dict())
    plain.upper.load_state_dict(ham.upper_bread.state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (ham, plain)]
    g = torch.Generator().manual_seed(1)
    target = torch.rand(4, 16, 8, 8, generator=g)
    for step in range(30):
        x = torch.randn(4, 16, 8, 8, generator=g) * 2
        outs = []
        for m, opt in zip((ham, plain), opts):
            torch.manual_seed(100 + step)                                      # the same fresh bases
            out = m(x)
            opt.zero_grad()
            ((out - target) ** 2).mean().backward()
            opt.step()
            outs.append(out.detach())
        # float rounding only: a real difference (an epsilon's scale, a bias, the init) shows at 1e-2
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    for p, q in zip(ham.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
