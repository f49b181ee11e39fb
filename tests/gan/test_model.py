"""HamGAN networks: shapes, where the context block sits, the zero gate, losses, EMA."""

import pytest
import torch

from hamlib import Hamburger, SelfAttention2d
from hamlib.layers import count_params
from hamlib.gan.model import (Discriminator, Generator, d_hinge_loss, ema_update,
                              g_hinge_loss, gate_values)
from hamlib.gan.train import CONFIGS, build_models, get_config


def tiny(block="ham"):
    G = Generator(5, z_dim=8, channels=(16, 16, 8), img_channels=3, block=block, block_res=8, rank=4)
    D = Discriminator(5, resolution=16, channels=(8, 16), img_channels=3, block=block, block_res=8, rank=4)
    return G, D


@pytest.mark.parametrize("block", ["ham", "attention", "none"])
def test_shapes_and_range(block):
    torch.manual_seed(0)
    G, D = tiny(block)
    z, y = torch.randn(6, 8), torch.randint(5, (6,))
    x = G(z, y)
    assert x.shape == (6, 3, 16, 16)
    assert x.abs().max() <= 1
    assert D(x, y).shape == (6,)


def test_context_block_sits_at_block_res_and_starts_as_identity():
    torch.manual_seed(0)
    G, D = tiny("ham")
    seen = {}
    for name, net in (("G", G), ("D", D)):
        assert isinstance(net.context, Hamburger)
        net.context.register_forward_hook(lambda m, i, o, name=name: seen.update({name: (i[0], o)}))
    G.eval()
    D(G(torch.randn(4, 8), torch.arange(4)), torch.arange(4))
    for name in ("G", "D"):
        inp, out = seen[name]
        assert inp.shape[-1] == 8                        # the resolution asked for
        assert torch.equal(inp, out)                     # sigma = 0: the block is the identity at init
    assert set(gate_values(G).values()) == {0.0} and set(gate_values(D).values()) == {0.0}
    assert G.context.upper_norm.num_classes == 5         # conditional BN after the upper bread in G


def test_self_attention_variant_is_gated_and_spectrally_normalised():
    G, D = tiny("attention")
    assert isinstance(G.context, SelfAttention2d) and G.context.gamma.item() == 0.0
    assert hasattr(D.context.qkv, "parametrizations")


def spectral_norms(net, kinds=(torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding)):
    """Largest singular value of each spectrally-normalised layer's effective weight."""
    return {n: torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
            for n, m in net.named_modules() if isinstance(m, kinds) and hasattr(m, "parametrizations")}


@pytest.mark.parametrize("block", ["ham", "attention"])
def test_spectral_norm_is_one_at_construction(block):
    torch.manual_seed(0)
    G, D = tiny(block)                                   # no training forward: the vectors must be fresh
    for net in (G.eval(), D.eval()):
        norms = spectral_norms(net)
        assert any("context" in n for n in norms) and len(norms) >= 8
        assert all(abs(s - 1.0) < 0.05 for s in norms.values()), norms


def test_bad_inputs_raise():
    G, D = tiny()
    with pytest.raises(ValueError, match="z of shape"):
        G(torch.randn(2, 7), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        G(torch.randn(2, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="Discriminator expects images"):
        D(torch.randn(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="block_res"):
        Generator(5, 8, (16, 16), block="ham", block_res=32)
    with pytest.raises(ValueError, match="context must be one of"):
        Generator(5, 8, (16, 16), block="attn", block_res=8)
    with pytest.raises(ValueError, match="'sa' is now 'attention'"):
        Discriminator(5, 16, (8, 16), block="sa", block_res=8)


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_hinge_loss(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert g_hinge_loss(fake).item() == pytest.approx(1.0)


def test_ema_update():
    a, b = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        a.weight.fill_(0.0), b.weight.fill_(1.0), b.running_mean.fill_(3.0)
    ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, torch.full((2,), 0.1)) and torch.equal(a.running_mean, b.running_mean)
    ema_update(a, b, 0.0)
    assert torch.equal(a.weight, b.weight)


def test_named_configs_build_at_their_resolution():
    for name in ("quick", "cifar10"):
        G, D = build_models(get_config(name))
        assert G.resolution == D.resolution == get_config(name).resolution
    ref = get_config("imagenet128_baby")                 # the paper's settings, checked without building
    assert ref.resolution == 4 * 2 ** (len(ref.g_channels) - 1) == 128
    assert ref.g_channels[list(4 * 2 ** (i + 1) for i in range(5)).index(32) + 1] == 256
    assert (ref.g_ham_d, ref.g_ham_rank, ref.d_ham_d, ref.d_ham_rank, ref.ham_steps) == (256, 32, 128, 16, 6)
    assert (ref.lr_g, ref.lr_d, ref.beta1, ref.beta2) == (1e-4, 4e-4, 0.0, 0.999)
    assert get_config("imagenet128_strong").batch_size == 1024 and ref.batch_size == 256
    assert set(CONFIGS) >= {"quick", "cifar10", "imagenet128_baby", "imagenet128_strong"}
    with pytest.raises(ValueError, match="no field"):
        get_config("quick", lr=1.0)
    with pytest.raises(ValueError, match="unknown config"):
        get_config("imagenet256")


def test_count_parameters():
    G, _ = tiny("none")
    assert count_params(G) == sum(p.numel() for p in G.parameters()) > 0
