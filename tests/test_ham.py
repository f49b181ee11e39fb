"""Hamburger blocks: shapes, parameter counts against the formula, init, state, errors."""

import math

import pytest
import torch

import hamlib
from hamlib.layers import ConditionalBatchNorm2d, conv_weight


def nparams(m):
    return sum(p.numel() for p in m.parameters())


def expected_params(version, C, d, num_classes=None, dual=False):
    w = 2 * d if dual else d
    lower = C * w + w                    # 1x1 conv with bias
    upper = w * C                        # 1x1 conv without bias
    if version == "v1":
        return lower + upper + 2 * C     # + BatchNorm(C)
    if version in ("v2", "v2+"):
        cheese = w * w + 2 * w           # 1x1 conv (no bias) + BatchNorm
        return lower + cheese + upper + (2 if version == "v2+" else 0)
    if version == "gan":
        cbn = 2 * C * num_classes if num_classes else 0
        return lower + upper + 1 + cbn  # + sigma
    raise AssertionError(version)


@pytest.mark.parametrize("ham", ["nmf", "vq", "cd"])
@pytest.mark.parametrize("version", ["v1", "v2", "v2+", "gan"])
def test_shapes_and_parameter_counts(ham, version):
    C, d = 24, 16
    m = hamlib.Hamburger(C, ham=ham, version=version, d=d, rank=4, steps=2)
    x = torch.rand(2, C, 5, 6)
    assert m(x).shape == x.shape
    assert nparams(m) == expected_params(version, C, d)


def test_paper_sized_block_parameter_count():
    # the paper's efficiency table: a Ham block of C = d = 512 has 0.50M parameters (two breads)
    m = hamlib.Hamburger(512, version="v1", rank=64)
    assert round(nparams(m) / 1e6, 2) == 0.53
    assert round((2 * 512 * 512) / 1e6, 2) == 0.52  # the breads' weights alone


def test_dual_and_groups():
    C, d = 16, 8
    m = hamlib.Hamburger(C, version="v2+", d=d, rank=3, dual=True, groups=2)
    x = torch.rand(2, C, 4, 5)
    assert m(x).shape == x.shape
    assert nparams(m) == expected_params("v2+", C, d, dual=True)
    m.eval()
    assert torch.equal(m(x), m(x))


def test_gan_variant_with_class_conditional_norm():
    C, d, K = 16, 8, 10
    m = hamlib.Hamburger(C, version="gan", d=d, rank=4, num_classes=K)
    assert isinstance(m.upper_norm, ConditionalBatchNorm2d)
    assert nparams(m) == expected_params("gan", C, d, num_classes=K)
    x, y = torch.randn(3, C, 4, 4), torch.tensor([0, 4, 9])
    assert torch.equal(m(x, y), x)  # sigma = 0: the block starts as the identity
    with pytest.raises(ValueError, match="labels y"):
        m(x)
    # spectral norm: the breads' effective weights have spectral norm ~1
    with torch.no_grad():
        for _ in range(30):
            m.train()(torch.rand(3, C, 4, 4), y)  # power iterations run in training forwards
    w = m.upper_bread.weight.reshape(C, -1)
    assert abs(torch.linalg.matrix_norm(w, 2).item() - 1) < 0.05


def test_v2plus_gates_start_closed():
    m = hamlib.Hamburger(8, version="v2+", d=8, rank=2)
    x = torch.randn(2, 8, 3, 3)
    torch.testing.assert_close(m(x), torch.relu(x))  # a = 0, b = 1 at init


def test_reference_init():
    m = hamlib.Hamburger(256, version="v2", d=256, rank=8)
    w = m.lower_bread[0].weight
    assert abs(w.std().item() / math.sqrt(2 / 256) - 1) < 0.05
    assert (m.lower_bread[0].bias == 0).all()
    bn = m.cheese[1]
    assert (bn.weight == 1).all() and (bn.bias == 0).all()
    g = hamlib.Hamburger(256, version="gan", d=256, rank=8)
    assert abs(conv_weight(g.upper_bread).std().item() / math.sqrt(2 / 256) - 1) < 0.05


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
    m2.load_state_dict(torch.load(tmp_path / "ham.pt"))
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
