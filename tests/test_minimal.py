"""hamlib.minimal.MinimalHamburger is hamlib.Hamburger(ham="nmf", version="v1", grad="one-step", init="pytorch")."""

import pytest
import torch

import hamlib
from hamlib.minimal import MinimalHamburger


def pair(C=8, d=6, r=3, K=4, seed=0):
    torch.manual_seed(seed)   # both draw their conv weights from the global RNG in the same order
    mini = MinimalHamburger(C, d=d, rank=r, steps=K)
    torch.manual_seed(seed)
    ham = hamlib.Hamburger(C, ham="nmf", version="v1", d=d, rank=r, steps=K, grad="one-step", init="pytorch")
    return mini.double(), ham.double()


def test_the_same_weights_and_bases():
    mini, ham = pair()
    assert torch.equal(mini.lower.weight, ham.lower_bread[0].weight)
    assert torch.equal(mini.lower.bias, ham.lower_bread[0].bias)
    assert torch.equal(mini.upper.weight, ham.upper_bread.weight)
    assert torch.equal(mini.D0, ham.ham.eval_bases)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("scale", [1.0, 1e6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_and_input_gradient_equal_hamburger(train, scale, dtype):
    mini, ham = pair()
    mini.to(dtype).train(train), ham.to(dtype).train(train)
    x = (scale * torch.randn(2, 8, 5, 7, dtype=dtype)).requires_grad_()
    w = torch.randn(2, 8, 5, 7, dtype=dtype)
    outs = []
    for m in (mini, ham):
        torch.manual_seed(1)  # training draws fresh bases from the global RNG
        y = m(x)
        (g,) = torch.autograd.grad((w * y).sum(), x)
        outs.append((y, g))
    (y1, g1), (y2, g2) = outs
    assert torch.equal(y1, y2) and torch.equal(g1, g2)      # the same operations in the same order
    assert g1.abs().max() > 0


def test_one_step_gradient_stays_inside_each_pixel():
    """The K steps are constants for autograd: a pixel's output depends on the other pixels
    only through the bases, which the backward does not see."""
    mini, _ = pair()
    mini.eval()
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(mini(x)[0, :, 1, 2].sum(), x)
    g[0, :, 1, 2] = 0
    assert g.abs().max() == 0


def test_a_different_number_of_steps_changes_the_output():
    mini, ham = pair(K=1)
    mini6, _ = pair(K=6)
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    assert not torch.allclose(mini.eval()(x), mini6.eval()(x))


@pytest.mark.parametrize("train", [False, True])
def test_bptt_equals_hamburgers_v1_bptt(train):
    """bptt=True (the 'plain' context, the comparison tables' plain v1 row) is
    hamlib.Hamburger(version="v1", grad="bptt", init="pytorch"): same output and input gradient."""
    torch.manual_seed(0)
    mini = MinimalHamburger(8, d=6, rank=3, steps=4, bptt=True).double().train(train)
    torch.manual_seed(0)
    ham = hamlib.Hamburger(8, ham="nmf", version="v1", d=6, rank=3, steps=4, grad="bptt",
                           init="pytorch").double().train(train)
    x = torch.randn(2, 8, 5, 7, dtype=torch.float64, requires_grad=True)
    outs = []
    for m in (mini, ham):
        torch.manual_seed(1)
        y = m(x)
        outs.append((y, torch.autograd.grad(y.square().sum(), x)[0]))
    torch.testing.assert_close(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1])
    # and it is not the one-step block: autograd now connects pixels through the K steps
    mini.eval()
    X = torch.relu(mini.lower(x.detach()))[0].sum(0)                  # a pixel whose NMF row is not 0
    i, j = divmod(int(X.argmax()), X.shape[1])
    (g,) = torch.autograd.grad(mini(x)[0, :, i, j].sum(), x)
    g[0, :, i, j] = 0
    assert g.abs().max() > 1e-3


def test_plain_context_is_the_bptt_minimal_block():
    block = hamlib.context_block("plain", 8, ham="nmf", rank=3, steps=4)
    assert isinstance(block, MinimalHamburger) and block.bptt and block.steps == 4 and block.D0.shape == (1, 8, 3)
    with pytest.raises(ValueError, match="plain v1 NMF block"):
        hamlib.context_block("plain", 8, ham="vq")
