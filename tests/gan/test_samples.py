"""hamlib.gan.samples: grids, interpolations and notebook 07's class / latent widget callback."""

import matplotlib
import pytest
import torch

from hamlib.gan.model import Generator
from hamlib.gan.samples import class_grid, draw_class_latent, interpolate, latent_walk
from hamlib.layers import ConditionalBatchNorm2d

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_generator(seed=0, block="ham"):
    torch.manual_seed(seed)
    G = Generator(10, z_dim=8, channels=(16, 16), img_channels=1, block=block, block_res=8, rank=4, steps=3)
    with torch.no_grad():          # class-dependent BN scales, as after training (at init every class is alike)
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.gamma.weight.normal_(1.0, 0.5)
    return G.eval()


def test_latent_walk_ends_are_the_generator_at_the_path_ends():
    G = tiny_generator()
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(2, 4, G.z_dim, generator=g)
    y = torch.full((4,), 3, dtype=torch.long)
    with torch.no_grad():
        assert torch.allclose(latent_walk(G, 3, 0.0, n=4, seed=5), G(a, y), atol=1e-6)
        assert torch.allclose(latent_walk(G, 3, 1.0, n=4, seed=5), G(b, y), atol=1e-6)
        mid = latent_walk(G, 3, 0.5, n=4, seed=5)
        assert torch.allclose(mid, G((a + b) / 2, y), atol=1e-6)
    assert mid.shape == (4, 1, 8, 8) and mid.abs().max() <= 1


def test_latent_walk_depends_on_label_and_seed_only_as_asked():
    G = tiny_generator()
    x = latent_walk(G, 2, 0.3, n=3, seed=1)
    assert torch.equal(x, latent_walk(G, 2, 0.3, n=3, seed=1))         # deterministic
    assert not torch.allclose(x, latent_walk(G, 7, 0.3, n=3, seed=1))   # the label changes the images
    assert not torch.allclose(x, latent_walk(G, 2, 0.3, n=3, seed=2))   # so does the seed
    with pytest.raises(ValueError, match="t must be"):
        latent_walk(G, 2, 1.5)
    with pytest.raises(ValueError, match="label"):
        latent_walk(G, 10, 0.5)


def test_draw_class_latent_one_row_per_generator():
    gens = {"ham": tiny_generator(0), "attention": tiny_generator(1, block="attention")}
    fig = draw_class_latent(gens, 4, 0.25, n=5, seed=0)
    ax = fig.axes[0]
    assert ax.get_title() == "class 4, latent position t = 0.25"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["ham", "attention"]
    img = ax.images[0].get_array()
    assert img.shape == (2 * 8, 5 * 8)
    # the picture is the tiled latent_walk rows, mapped from [-1, 1] to [0, 1]
    row = (latent_walk(gens["attention"], 4, 0.25, n=5, seed=0)[:, 0].clamp(-1, 1) + 1) / 2   # (5, 8, 8)
    assert torch.allclose(torch.as_tensor(img[8:16]), torch.cat(list(row), dim=1), atol=1e-6)


def test_class_grid_and_interpolate_shapes():
    G = tiny_generator()
    assert class_grid(G, 10, per_class=3).shape == (10, 3, 1, 8, 8)
    walk = interpolate(G, [0, 5], steps=4)
    assert walk.shape == (2, 4, 1, 8, 8)
