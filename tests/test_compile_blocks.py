"""Every block compiles with torch.compile(fullgraph=True), in training and evaluation mode,
with its default settings, and computes what it computes eagerly (float64: the forward, and in
training every parameter's gradient).

Most cases trace with backend="aot_eager" (dynamo and autograd tracing: where graph breaks and
in-place errors show, in a fraction of inductor's compile time); one evaluation case also goes
through inductor's code generation (a training case would add its backward: 2-3x the time).
The solver modules alone are tested in test_compile.py.
"""

import copy

import pytest
import torch
import torch._dynamo
import torch._inductor.config

import hamlib
from hamlib.context import context_block

C = 8
CASES = {  # name: (build, takes labels)
    "v1-nmf": (lambda: hamlib.Hamburger(C, ham="nmf", version="v1", d=C, rank=2, steps=2), False),
    "v2-vq": (lambda: hamlib.Hamburger(C, ham="vq", version="v2", d=C, rank=2, steps=2), False),
    "v2+-cd-groups": (lambda: hamlib.Hamburger(C, ham="cd", version="v2+", d=C, rank=2, steps=2, groups=2), False),
    "v2+-nmf-dual": (lambda: hamlib.Hamburger(C, ham="nmf", version="v2+", d=C, rank=2, steps=2, groups=2,
                                               dual=True), False),
    "gan-nmf": (lambda: hamlib.Hamburger(C, ham="nmf", version="gan", d=C, rank=2, steps=2), False),
    "gan-cd-classes": (lambda: hamlib.Hamburger(C, ham="cd", version="gan", d=C, rank=2, steps=2, num_classes=3), True),
    "self-attention": (lambda: hamlib.SelfAttention2d(C, heads=2), False),
    "self-attention-sn": (lambda: context_block("attention", C, version="gan"), False),   # HamGAN's: spectral-normalised convs
}
INDUCTOR = {("v2-vq", False)}  # the case that also goes through code generation


def open_gates(m):
    """Gates and sigma away from their initial 0, so the path shows in the output."""
    with torch.no_grad():
        for name in ("gate_ham", "sigma", "gamma"):
            if hasattr(m, name):
                getattr(m, name).fill_(0.5)
    return m


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(CASES))
@torch._inductor.config.patch(fallback_random=True)  # the same random bases as eager
def test_block_compiles_with_fullgraph_and_matches_eager(name, train):
    torch._dynamo.reset()
    build, labelled = CASES[name]
    torch.manual_seed(0)
    eager = open_gates(build()).double().train(train)   # float64: exact enough to compare
    compiled_module = copy.deepcopy(eager)
    compiled = torch.compile(compiled_module, fullgraph=True,
                             backend="inductor" if (name, train) in INDUCTOR else "aot_eager")
    x = torch.rand(2, C, 4, 4, dtype=torch.float64)
    args = (x, torch.tensor([0, 2])) if labelled else (x,)
    with torch.set_grad_enabled(train):
        torch.manual_seed(1)
        want = eager(*args)
        torch.manual_seed(1)
        got = compiled(*args)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert (want - x).abs().max() > 1e-3                     # not the identity
    if train:
        want.square().sum().backward()
        got.square().sum().backward()
        for (n, p), q in zip(eager.named_parameters(), compiled_module.parameters()):
            assert p.grad is not None, n
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-9 * p.grad.abs().max().item(), msg=n)
