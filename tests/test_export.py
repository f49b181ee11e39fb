"""Export in evaluation mode: torch.export and ONNX (run in onnxruntime), dynamic batch, H and W.

Every solver module option (groups, token layout, spatial=False, learned bases) and every Hamburger
version (v1, v2, v2+, dual, gan with and without classes) of each solver is in one output of a `Cases`
module, so that one export per solver covers them all (an export costs seconds per module in it).
Traced at (2, C, 6, 7), run at other shapes, on random inputs, on real feature maps (a photo's
features through a fixed conv), on zeros (the epsilons must survive export), at extreme scales (the
scale-aware solve) and in half precision.
"""

import pytest
import torch
import torch.nn as nn

import onnxruntime as ort  # in the test extra
from hamlib import Hamburger
from hamlib.md import SOLVERS
from notebooks.course.context import image_features

C, KW = 8, dict(rank=2, steps=1)   # small and short: a CD step's elimination is unrolled over r
TOL = 1e-4                         # max |exported - eager| relative to max |eager| (float32 reordering)
DIMS = dict(B=torch.export.Dim("B", min=1), H=torch.export.Dim("H", min=2), W=torch.export.Dim("W", min=2))
RANDOM_TORCH = ("rand", "normal", "bernoulli", "uniform", "multinomial", "poisson", "exponential")
RANDOM_ONNX = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}


class Tokens(nn.Module):
    """A layout="bnc" module on feature maps: (B, C, H, W) -> (B, N, C) tokens -> back."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x.flatten(2).mT).mT.reshape(x.shape)


class Cases(nn.Module):
    """forward(x (B, C, H, W), y (B,) labels) -> one output per case, in the order of `names`."""

    def __init__(self, kind):
        super().__init__()
        M, hk = SOLVERS[kind], dict(ham=kind, d=4, **KW)
        self.nonneg = kind == "nmf"   # the bare NMF modules need X >= 0 (a Hamburger's lower bread has a ReLU)
        # each option once: groups=2 also in v2+ and dual, spatial=False in dual's channel half
        self.solvers = nn.ModuleDict({"layout=bnc,groups=2": Tokens(M(C, layout="bnc", groups=2, **KW)),
                                      "bases=learned": M(C, bases="learned", **KW)})
        self.hams = nn.ModuleDict({"v1": Hamburger(C, version="v1", **hk), "v2": Hamburger(C, **hk),
                                   "v2+": Hamburger(C, version="v2+", groups=2, **hk),
                                   "dual": Hamburger(C, version="v2+", dual=True, groups=2, **hk),
                                   "gan": Hamburger(C, version="gan", **hk)})
        self.cgan = Hamburger(C, version="gan", num_classes=3, **hk)
        for h in [*self.hams.values(), self.cgan]:   # the gates start at 0 (the block = identity): open them
            for name in ("gate_ham", "sigma"):
                if hasattr(h, name):
                    nn.init.ones_(getattr(h, name))
        self.names = [*self.solvers, *self.hams, "gan+classes"]

    def forward(self, x, y):
        xs = x.abs() if self.nonneg else x
        return (*(m(xs) for m in self.solvers.values()), *(h(x) for h in self.hams.values()), self.cgan(x, y))


class Exported:
    def __init__(self, kind):
        torch.manual_seed(0)
        self.model = Cases(kind).eval()
        x, y = torch.randn(2, C, 6, 7), torch.tensor([0, 2])
        shapes = ({0: DIMS["B"], 2: DIMS["H"], 3: DIMS["W"]}, {0: DIMS["B"]})
        self.ep = torch.export.export(self.model, (x, y), dynamic_shapes=shapes)
        self.onnx = torch.onnx.export(self.ep, dynamo=True, verbose=False).model_proto
        self.sess = ort.InferenceSession(self.onnx.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(self, x, y):
        """(eager, torch.export, onnxruntime) outputs, one tuple each."""
        with torch.no_grad():
            eager, ep = self.model(x, y), self.ep.module()(x, y)
        onnx = self.sess.run(None, {"x": x.numpy(), "y": y.numpy()})
        return eager, ep, tuple(torch.from_numpy(o) for o in onnx)

    def errors(self, x, y):
        """{case: (max error of torch.export, of ONNX, max |eager|)}; asserts every output is finite."""
        out = {}
        for name, e, t, o in zip(self.model.names, *self.run(x, y)):
            assert torch.isfinite(e).all() and torch.isfinite(t).all() and torch.isfinite(o).all(), name
            out[name] = ((t - e).abs().max().item(), (o - e).abs().max().item(), e.abs().max().item())
        return out


@pytest.fixture(scope="module", params=["nmf", "vq", "cd"])
def exported(request):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Exported(request.param)
    torch.set_num_threads(n)


def labels(B):
    return torch.arange(B) % 3


def photo_features(B, size):
    """Real feature maps: B photos' 15 colour/edge channels through a fixed 1x1 conv to C, (B, C, size, size)."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(C, 15, 1, 1, generator=g) / 15 ** 0.5
    x = torch.cat([image_features(name, size)[1] for name in ("astronaut", "coffee", "chelsea", "rocket")[:B]])
    return nn.functional.conv2d(x, w)


def assert_close(errors, tol=TOL):
    bad = {k: v for k, v in errors.items() if max(v[0], v[1]) > tol * v[2]}   # relative: zeros must give 0 exactly
    assert not bad, f"(torch.export error, ONNX error, max |eager|) over tolerance: {bad}"


def test_outputs_equal_eager_at_other_shapes_and_on_photo_features(exported):
    for x in (torch.randn(3, C, 5, 9), torch.randn(1, C, 2, 3), photo_features(2, 12)):
        assert_close(exported.errors(x, labels(x.shape[0])))


def test_graphs_hold_no_random_op_no_host_sync_and_are_deterministic(exported):
    targets = {str(n.target) for gm in exported.ep.graph_module.modules() if isinstance(gm, torch.fx.GraphModule)
               for n in gm.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if any(r in t for r in RANDOM_TORCH)], targets
    assert not [t for t in targets if "_local_scalar_dense" in t or ".item" in t], targets  # no host sync
    ops = {n.op_type for n in exported.onnx.graph.node}
    assert not ops & RANDOM_ONNX, ops
    x, y = torch.randn(2, C, 4, 4), labels(2)
    first, second = exported.run(x, y), exported.run(x, y)
    for a, b in zip(first[1] + first[2], second[1] + second[2]):
        assert torch.equal(a, b)


def test_epsilons_survive_export_on_zero_inputs(exported):
    # all zeros, and a batch whose first image is zero and whose second has one non-zero position:
    # every denominator that eps (or the clamps, or CD's ridge) keeps away from 0 would be 0 here
    sparse = torch.zeros(2, C, 4, 5)
    sparse[1, :, 2, 3] = torch.randn(C)
    for x in (torch.zeros(2, C, 3, 3), sparse):
        assert_close(exported.errors(x, labels(2)))


def test_scale_aware_solve_is_exported(exported):
    x = torch.randn(2, C, 4, 6)
    for a in (2.0 ** -20, 2.0 ** 20, 1e30):
        assert_close(exported.errors(a * x, labels(2)))


def test_input_value_checks_are_eager_and_torch_export_only(exported):
    x = torch.randn(2, C, 3, 3)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        exported.model(x, labels(2))
    with pytest.raises(RuntimeError, match="NaN or inf"):    # a torch._assert_async in the exported graph
        exported.ep.module()(x, labels(2))
    out = exported.sess.run(None, {"x": x.numpy(), "y": labels(2).numpy()})   # ONNX has no assert: NaN flows on
    assert any(not torch.isfinite(torch.from_numpy(o)).all() for o in out)


class Solvers(nn.Module):
    """NMF2D, VQ2D and CD2D side by side: x -> (three outputs)."""

    def __init__(self):
        super().__init__()
        self.m = nn.ModuleList([SOLVERS[k](C, **KW) for k in SOLVERS])

    def forward(self, x):
        return tuple(s(x) for s in self.m)


def test_half_precision_inputs_export_with_the_solver_in_float32():
    model = Solvers().eval()
    x = torch.rand(2, C, 5, 6)
    for dtype in (torch.float16, torch.bfloat16):
        ep = torch.export.export(model, (x.to(dtype),), dynamic_shapes=({0: DIMS["B"], 2: DIMS["H"], 3: DIMS["W"]},))
        x2 = torch.rand(3, C, 4, 7).to(dtype)
        for e, t in zip(model(x2), ep.module()(x2)):
            assert t.dtype == dtype and torch.equal(e, t)
        if dtype == torch.float16:   # numpy has no bfloat16
            sess = ort.InferenceSession(torch.onnx.export(ep, dynamo=True, verbose=False).model_proto.SerializeToString(),
                                        providers=["CPUExecutionProvider"])
            for e, o in zip(model(x2), sess.run(None, {sess.get_inputs()[0].name: x2.numpy()})):
                assert (torch.from_numpy(o).float() - e.float()).abs().max() <= 1e-3 * e.float().abs().max()


def test_a_block_exported_under_autocast_runs_as_eager_under_autocast():
    m = Hamburger(C, ham="vq", **KW).eval()
    x = torch.randn(2, C, 5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ep = torch.export.export(m, (x,))
        assert torch.equal(ep.module()(x), m(x))


def test_training_mode_export_is_refused_with_a_clear_error():
    x = torch.rand(2, C, 4, 4)
    for m in (SOLVERS["nmf"](C, **KW), Hamburger(C, ham="cd", **KW)):
        with pytest.raises(RuntimeError, match=r"training-mode bases are random .* call \.eval\(\)"):
            torch.export.export(m.train(), (x,))
    learned = SOLVERS["nmf"](C, bases="learned", **KW).train()   # no random draw: exports, bases update included
    ep = torch.export.export(learned, (x,))
    assert not any(any(r in str(n.target) for r in RANDOM_TORCH) for n in ep.graph.nodes)
