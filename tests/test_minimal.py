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
