"""The texture-by-legend task: real pictures, disjoint halves, exact labels, out of a local model's reach."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
import torch

from hamlib.seg import texture
from hamlib.seg.heads import HeadConfig
from hamlib.seg.model import ModelConfig, build_model
from hamlib.seg.texture import TEXTURES, TextureConfig, TextureDataset, half, make_texture_dataset, source
from hamlib.seg.train import TrainConfig, build_datasets, get_config


def test_seeded_and_cached():
    a, la, ca = make_texture_dataset(6, seed=3)
    b, lb, cb = make_texture_dataset(6, seed=3)
    c, _, _ = make_texture_dataset(6, seed=4)
    assert a is b                                     # the cache
    texture._cached.cache_clear()
    b2, lb2, cb2 = make_texture_dataset(6, seed=3)    # and the same again from scratch
    assert torch.equal(a, b2) and torch.equal(la, lb2) and torch.equal(ca, cb2) and not torch.equal(a, c)
    assert a.shape == (6, 3, 64, 64) and a.dtype == torch.float32 and la.dtype == torch.int64
    patch = ca[:, None].expand_as(a)
    assert 0 <= a[patch].min() and a[patch].max() <= 1          # gray patches: standardised, clipped
    v, _, _ = make_texture_dataset(6, seed=3, split="val")
    assert not torch.equal(a, v)


def test_sources_are_the_packaged_pictures_with_their_licences():
    for name, (loader, _, f, licence) in TEXTURES.items():
        doc = getattr(skimage.data, loader).__doc__
        assert ("CC0" in licence and "CC0" in doc) or ("public domain" in licence and "public domain" in doc), name
        raw = getattr(skimage.data, loader)()
        im = source(name)
        assert im.shape == (raw.shape[0] // f, raw.shape[1] // f) and 0 <= im.min() and im.max() <= 1
        # the two halves are disjoint rows that together are the whole source
        top, bottom = half(name, "train"), half(name, "val")
        assert np.array_equal(np.concatenate([top, bottom]), im) and len(top) == len(im) // 2


def test_validation_images_only_read_the_bottom_halves(monkeypatch):
    calls = []
    real = texture.half
    monkeypatch.setattr(texture, "half", lambda name, split: calls.append(split) or real(name, split))
    texture._cached.cache_clear()
    TextureDataset(3, seed=99, split="val")
    assert calls and set(calls) == {"val"}
    calls.clear()
    TextureDataset(3, seed=99, split="train")
    assert set(calls) == {"train"}
    texture._cached.cache_clear()


def _stripes(kind, h=64, w=128):
    yy, xx = np.mgrid[:h, :w]
    return {"v": xx % 2, "h": yy % 2, "c": (xx + yy) % 2}[kind].astype(np.float32)


def _kind(region):
    """Which stripe texture a (k, k) block shows: differences along x, along y, or both."""
    dx = np.abs(np.diff(region, axis=1)).mean()
    dy = np.abs(np.diff(region, axis=0)).mean()
    return "c" if min(dx, dy) > 0.05 else ("v" if dx > dy else "h")


def test_a_gray_patch_takes_the_colour_of_the_legend_swatch_with_its_texture(monkeypatch):
    """With three textures one can tell apart by eye (vertical, horizontal, checkered stripes) in
    place of the photographs: every gray patch's label is the colour of the legend swatch of its
    texture, every patch is min_dist from the legend, and needs_context is exactly the patches."""
    fake = dict(brick="v", grass="h", gravel="c")
    monkeypatch.setattr(texture, "half", lambda name, split: _stripes(fake[name]))
    texture._cached.cache_clear()
    cfg = TextureConfig(textures=("brick", "grass", "gravel"))
    images, labels, ctx = make_texture_dataset(30, seed=7, cfg=cfg)
    texture._cached.cache_clear()
    ys, xs = np.mgrid[:64, :64]
    checked = 0
    for img, lab, c in zip(images.numpy(), labels.numpy(), ctx.numpy()):
        gray = img.mean(0)
        legend = (lab > 0) & ~c
        assert c.any() and (lab[c] > 0).all()
        d = np.maximum(np.abs(ys[c][:, None] - ys[legend][None]), np.abs(xs[c][:, None] - xs[legend][None]))
        assert d.min() >= cfg.min_dist
        swatches, n = ndi.label(legend)
        assert n == 2
        colour_of = {}
        for sy, sx in ndi.find_objects(swatches):
            colour_of.setdefault(_kind(gray[sy, sx]), set()).add(int(lab[sy, sx][0, 0]))
        patches, m = ndi.label(c)
        for k, (sy, sx) in enumerate(ndi.find_objects(patches), start=1):
            cy, cx = (sy.start + sy.stop) // 2, (sx.start + sx.stop) // 2
            kind = _kind(gray[cy - 3:cy + 3, cx - 3:cx + 3])                     # the patch's centre
            assert int(lab[cy, cx]) in colour_of[kind]
            assert len(set(lab[patches == k].tolist())) == 1
            checked += 1
    assert checked >= 30


def test_no_context_model_cannot_see_the_legend():
    """The quick network without context: logits at gray-patch pixels have exactly zero gradient
    with respect to every legend pixel; with self-attention they do not."""
    ds = TextureDataset(4, seed=1)
    for context, zero in (("none", True), ("attention", False)):
        torch.manual_seed(0)
        head = HeadConfig(context=context, channels=32, align_channels=16, kernel=1)
        m = build_model(ModelConfig("resnet_tiny", dict(width=16), head, 5)).eval()
        x = ds.images.clone().requires_grad_(True)
        (m(x) * ds.needs_context[:, None]).sum().backward()
        legend = (ds.labels > 0) & ~ds.needs_context
        assert (x.grad.abs().sum(1)[legend].max() == 0) == zero, context


def test_the_trainer_builds_it():
    cfg = get_config("texture", n_train=4, n_val=3)
    train_set, val_set = build_datasets(cfg)
    assert (train_set.split, val_set.split, len(train_set), len(val_set)) == ("train", "val", 4, 3)
    assert train_set.num_classes == cfg.model.num_classes == 5
    x, y = train_set[(0, 1)]
    assert x.shape == (3, 64, 64) and y.shape == (64, 64)
    with pytest.raises(ValueError, match="texture task has 4 classes"):
        TrainConfig(model=ModelConfig("resnet_tiny", {}, HeadConfig(), 5), dataset="texture",
                    texture=TextureConfig(n_colours=3))


@pytest.mark.parametrize("kw, match", [
    (dict(textures=("brick", "marble")), "textures must be"),
    (dict(textures=("brick",)), "textures must be"),
    (dict(textures=("brick", "brick")), "textures must be"),
    (dict(n_colours=9), "n_colours"),
    (dict(size=40), "too small"),
    (dict(shape_min=21), "shape_min"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        make_texture_dataset(2, cfg=TextureConfig(**kw))


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be"):
        make_texture_dataset(2, split="test")
    with pytest.raises(ValueError, match="positive number of images"):
        make_texture_dataset(0)
    with pytest.raises(ValueError, match="texture must be one of"):
        source("marble")
