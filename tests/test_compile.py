"""torch.compile(fullgraph=True): every module compiles without a graph break and matches eager.

fullgraph=True is a property of Dynamo's trace, whatever the backend: most cases compile with
the "aot_eager" backend (Dynamo + AOTAutograd, forward and backward graphs, no C++ code
generation: about a second each), and one case per section with Inductor (the default backend,
tens of seconds on a 2-core CPU), so the file stays under a minute.

Training mode draws random bases from the global RNG; Inductor draws its own random numbers
unless `fallback_random` is set, so the comparisons set it.
"""

import copy

import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config

import hamlib


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def compare_with_eager(module, x, backend, rtol=1e-4, atol=1e-5, grad=True):
    """Compile `module` with fullgraph=True; the forward and the input gradient of a fixed
    loss match eager (same global seed before each, so training draws the same bases), and so
    do the buffers after the call (a learned-bases update)."""
    torch._dynamo.reset()
    eager = copy.deepcopy(module)
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    w = torch.randn(x.shape, generator=gen(1))
    out = []
    for f in (compiled, eager):
        xi = x.clone().requires_grad_(grad)
        torch.manual_seed(0)
        with inductor_config.patch(fallback_random=True):
            y = f(xi)
            (g,) = torch.autograd.grad((y * w).sum(), xi) if grad else (None,)
        out.append((y.detach(), g))
    torch.testing.assert_close(out[0], out[1], rtol=rtol, atol=atol)
    torch.testing.assert_close(dict(module.named_buffers()), dict(eager.named_buffers()), rtol=rtol, atol=atol)
    return out[0]


# ------------------------------------------------------------------ solvers -
# Every solver in training and evaluation with its default gradient, the gradient modes once
# each, spatial=False (whose evaluation bases come from a hash, not a generator). The
# "implicit" mode does not compile with fullgraph=True: its backward calls autograd.grad
# (Dynamo: "autograd.grad consumed returned tensor's grad_fn"); see hamlib.md.

SOLVER_CASES = [
    (hamlib.NMF2D, {}, True), (hamlib.NMF2D, {}, False),
    (hamlib.VQ2D, {}, True), (hamlib.VQ2D, {}, False),
    (hamlib.CD2D, {}, True), (hamlib.CD2D, {}, False),
    (hamlib.NMF2D, dict(grad="one-step"), True),
    (hamlib.NMF2D, dict(grad="one-step-bases"), True),
    (hamlib.CD2D, dict(grad=2), True),
    (hamlib.VQ2D, dict(grad="bptt"), True),
    (hamlib.VQ2D, dict(spatial=False), False),
    (hamlib.CD2D, dict(spatial=False, groups=2), True),
    (hamlib.NMF2D, dict(bases="learned", groups=2), True),
    (hamlib.CD2D, dict(layout="bnc"), False),
]


@pytest.mark.parametrize("cls, kw, train", SOLVER_CASES)
def test_solver_compiles_fullgraph(cls, kw, train):
    m = cls(8, rank=3, steps=3, **kw).train(train)
    x = torch.rand(2, 8, 4, 5, generator=gen(0))
    if kw.get("layout") == "bnc":
        x = x.flatten(2).mT                                   # (B, N, C)
    if cls is not hamlib.NMF2D:
        x = x - 0.5
    if kw.get("bases") == "learned":
        before = m.bases.clone()
        compare_with_eager(m, x, "aot_eager")
        assert not torch.equal(m.bases, before)               # the buffer update ran in the graph
    else:
        compare_with_eager(m, x, "aot_eager")


def test_solver_compiles_with_inductor():
    """Inductor's code generation on the inference graph (with a backward it takes 3x longer)."""
    m = hamlib.NMF2D(8, rank=3, steps=3, spatial=False).eval()
    compare_with_eager(m, torch.rand(2, 8, 4, 5, generator=gen(0)), "inductor", grad=False)


def test_compiled_validation_raises_without_a_host_sync():
    """Under torch.compile the value check is a device-side assert (no .item()): on the CPU it
    raises a RuntimeError with the same message."""
    torch._dynamo.reset()
    m = torch.compile(hamlib.NMF2D(8, rank=3).eval(), fullgraph=True, backend="aot_eager")
    x = torch.rand(1, 8, 4, 4, generator=gen(0))
    m(x)
    bad = x.clone()
    bad[0, 2, 1, 1] = float("nan")
    with pytest.raises(RuntimeError, match="NaN or inf"):
        m(bad)
    with pytest.raises(RuntimeError, match="non-negative"):
        m(x - 0.5)
