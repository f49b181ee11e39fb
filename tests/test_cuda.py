"""The GPU path: every solver and gradient mode on CUDA against the CPU, and a mixed-precision
training step. Skipped where there is no CUDA device (CI); run on a GPU machine with
`pytest tests/test_cuda.py` (the rest of the suite then runs its trainers on the GPU too)."""

import pytest
import torch

import hamlib
from hamlib.grad import GRAD_MODES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

MODULES = [hamlib.NMF2D, hamlib.VQ2D, hamlib.CD2D]


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("grad", [*GRAD_MODES, 2])
@pytest.mark.parametrize("spatial", [True, False])
def test_forward_and_backward_match_the_cpu(cls, grad, spatial):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 16, 6, 6, generator=g, dtype=torch.float64) + 0.1
    w = torch.randn(2, 16, 6, 6, generator=g, dtype=torch.float64)
    temperature = {} if cls is hamlib.NMF2D else dict(inv_t=10.0)   # NMF has none: NMF2D rejects inv_t
    m = cls(16, rank=4, steps=4, grad=grad, spatial=spatial, **temperature).double().eval()
    out = {}
    for dev in ("cpu", "cuda"):
        xi = x.to(dev).requires_grad_(True)
        y = m.to(dev)(xi)
        (gx,) = torch.autograd.grad((y * w.to(dev)).sum(), xi)
        out[dev] = (y.detach().cpu(), gx.cpu())
    torch.testing.assert_close(out["cuda"], out["cpu"], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("cls", MODULES)
@pytest.mark.parametrize("train", [True, False])
def test_no_host_sync_in_forward_and_backward(cls, train):
    """validate=True (the default) checks the values with a device-side assert: with CUDA's
    sync debug mode set to "error", any operation that waits for the device raises."""
    m = cls(16, rank=4, steps=3).to("cuda").train(train)
    x = torch.rand(2, 16, 8, 8, device="cuda", requires_grad=True)
    m(x)                                            # warm up (first-call allocations, cuBLAS handles)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        m(x).square().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("ham", ["nmf", "vq", "cd"])
def test_hamburger_trains_under_autocast(ham):
    torch.manual_seed(0)
    block = hamlib.Hamburger(64, ham=ham, version="v2", rank=8, steps=6).to("cuda").train()
    opt = torch.optim.SGD(block.parameters(), lr=0.01)
    x = torch.randn(4, 64, 16, 16, device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cuda", dtype=dtype):
            y = block(x)
        assert torch.isfinite(y).all()
        y.float().square().mean().backward()
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(gr).all() for gr in grads)
        opt.step()
        opt.zero_grad()


def test_eval_is_deterministic_on_cuda():
    block = hamlib.Hamburger(32, ham="nmf", rank=8).to("cuda").eval()
    x = torch.rand(3, 32, 12, 12, device="cuda")
    with torch.no_grad():
        assert torch.equal(block(x), block(x))                       # same input, same output
        torch.testing.assert_close(block(x[:1]), block(x)[:1])       # and independent of the batch
