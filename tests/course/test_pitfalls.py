"""The helpers of notebook 10 (course.pitfalls): the tiny head, repeated runs and their spread,
the picture and the widget callback, state-dict prefixes; no browser."""

import pytest
import torch
import torch.nn as nn
from matplotlib.figure import Figure

import hamlib
from notebooks.course import pitfalls

pytestmark = pytest.mark.usefixtures("one_thread")


class NoisyHam(nn.Module):
    """A ham that adds fresh noise at every call: a stand-in for random eval bases."""

    def forward(self, z):
        return z + 0.5 * torch.randn_like(z)


def test_tiny_head_is_seeded_and_in_eval_mode():
    a, b = pitfalls.TinyHead(nn.Identity(), seed=3), pitfalls.TinyHead(nn.Identity(), seed=3)
    c = pitfalls.TinyHead(nn.Identity(), seed=4)
    img = pitfalls.toy_image(8)
    assert not a.training
    assert torch.equal(a(img), b(img)) and not torch.equal(a(img), c(img))
    assert a(img).shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match="classes"):
        pitfalls.TinyHead(nn.Identity(), classes=1)


def test_toy_image_is_seeded_and_in_unit_range():
    img = pitfalls.toy_image(12, seed=1)
    assert img.shape == (1, 3, 12, 12) and img.min() >= 0 and img.max() == 1
    assert torch.equal(img, pitfalls.toy_image(12, seed=1)) and not torch.equal(img, pitfalls.toy_image(12, seed=2))
    with pytest.raises(ValueError, match="size"):
        pitfalls.toy_image(1)


def test_runs_of_finds_spread_only_for_a_random_ham():
    img = pitfalls.toy_image(10)
    torch.manual_seed(0)
    noisy = pitfalls.runs_of(pitfalls.TinyHead(NoisyHam()), img, 5)
    fixed = pitfalls.runs_of(pitfalls.TinyHead(hamlib.NMF2D(16, rank=4)), img, 5)
    assert noisy["preds"].shape == (5, 10, 10) and noisy["spread"].shape == (10, 10)
    assert noisy["spread"].min() > 0
    assert torch.equal(fixed["spread"], torch.zeros(10, 10))
    with pytest.raises(ValueError, match="runs"):
        pitfalls.runs_of(pitfalls.TinyHead(NoisyHam()), img, 0)
    with pytest.raises(ValueError, match="one image"):
        pitfalls.runs_of(pitfalls.TinyHead(NoisyHam()), img.repeat(2, 1, 1, 1), 2)


def test_disagreement_counts_runs_that_differ_from_the_first():
    preds = torch.tensor([[[0, 1]], [[0, 2]], [[1, 1]], [[0, 1]]])     # (4 runs, 1, 2)
    assert torch.equal(pitfalls.disagreement(preds), torch.tensor([[0.25, 0.25]], dtype=torch.float64))
    with pytest.raises(ValueError, match="runs, H, W"):
        pitfalls.disagreement(torch.zeros(3, 3))


def test_draw_runs_and_the_widget_callback_make_figures():
    img = pitfalls.toy_image(8)
    heads = {"noisy": pitfalls.TinyHead(NoisyHam()), "hamlib": pitfalls.TinyHead(hamlib.NMF2D(16, rank=2))}
    fig = pitfalls.draw_runs({k: pitfalls.runs_of(h, img, 4) for k, h in heads.items()}, show=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 * 3 + 1                 # 2 rows x (2 runs + spread) + colour bar
    assert "flips" in fig.axes[2].get_title()
    fig = pitfalls.draw_choice(heads, img, "noisy", 2)
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "run 1"
    with pytest.raises(ValueError, match="unknown ham"):
        pitfalls.draw_choice(heads, img, "vq", 2)
    with pytest.raises(ValueError, match="empty"):
        pitfalls.draw_runs({})


def test_runs_widget_redraws_on_change():
    import ipywidgets as widgets

    img = pitfalls.toy_image(8)
    heads = {"noisy": pitfalls.TinyHead(NoisyHam()), "hamlib": pitfalls.TinyHead(hamlib.NMF2D(16, rank=2))}
    box = pitfalls.runs_widget(heads, img, runs=3)
    dropdown, slider = box.children[0].children
    assert isinstance(dropdown, widgets.Dropdown) and isinstance(slider, widgets.IntSlider)
    assert len(box.children[1].outputs) == 1
    dropdown.value = "hamlib"
    assert len(box.children[1].outputs) == 1 and dropdown.value == "hamlib"
    assert "pitfalls-runs" in slider._dom_classes and "pitfalls-runs-box" in box._dom_classes


def test_strip_prefix_and_key_report():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    wrapped = {"module." + k: v for k, v in model.state_dict().items()}
    report = pitfalls.key_report(model, wrapped)
    assert report["matched"] == [] and len(report["missing"]) == 4 and len(report["unexpected"]) == 4
    stripped = pitfalls.strip_prefix(wrapped, "module.")
    assert pitfalls.key_report(model, stripped) == {"matched": sorted(model.state_dict()), "missing": [],
                                                    "unexpected": [], "shape_mismatch": []}
    bad = dict(stripped, **{"0.weight": torch.zeros(5, 5)})
    assert pitfalls.key_report(model, bad)["shape_mismatch"] == ["0.weight"]
    with pytest.raises(ValueError, match="no key starts with"):
        pitfalls.strip_prefix(stripped, "backbone.")
    with pytest.raises(ValueError, match="empty"):
        pitfalls.strip_prefix(wrapped, "")
