"""Backbone: shapes and dilations of the reference, the torchvision-layout loader."""

import pytest
import torch

from hamlib.seg.backbone import ResNet, ResNetSpec, load_pretrained, resnet50, resnet101, resnet_tiny


def _dilations(stage):
    return [b.conv2.dilation[0] for b in stage]


def test_resnet101_os8_reference_dilations_and_names():
    m = resnet101(output_stride=8)
    assert [len(getattr(m, f"layer{i}")) for i in range(1, 5)] == [3, 4, 23, 3]
    assert _dilations(m.layer4) == [2, 8, 16]                  # the reference's multi-grid
    assert set(_dilations(m.layer3)[1:]) == {2}
    assert m.layer3[0].conv2.stride == (1, 1) and m.layer4[0].conv2.stride == (1, 1)
    assert [m.conv1.kernel_size, m.conv2.kernel_size, m.conv3.kernel_size] == [(3, 3)] * 3
    assert (m.conv1.out_channels, m.conv2.out_channels, m.conv3.out_channels) == (64, 64, 128)
    keys = m.state_dict().keys()  # torchvision's names, so its checkpoints line up
    for k in ("layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var", "layer4.2.bn3.weight"):
        assert k in keys


@pytest.mark.parametrize("os_", [8, 16])
def test_resnet50_output_stride(os_):
    m = resnet50(output_stride=os_).eval()
    with torch.no_grad():
        feats = m(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [256, 512, 1024, 2048] == m.out_channels
    assert feats[-1].shape[-2:] == (64 // os_, 64 // os_)
    assert feats[0].shape[-2:] == (16, 16)
    if os_ == 16:
        assert _dilations(m.layer4) == [1, 4, 8] and m.layer3[0].conv2.stride == (2, 2)


def test_tiny_backbone_and_bad_input():
    m = resnet_tiny(width=16)
    feats = m(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(2, 16, 16, 16), (2, 32, 8, 8)]
    with pytest.raises(ValueError, match="expects images"):
        m(torch.randn(2, 1, 64, 64))
    with pytest.raises(ValueError, match="output_stride"):
        ResNet(ResNetSpec("basic", (1, 1), (8, 8), (8, 8, 8), output_stride=32))


def _small_bottleneck():
    return ResNet(ResNetSpec("bottleneck", (2, 1, 1, 1), (4, 4, 8, 8), (8, 8, 16), output_stride=8))


def _torchvision_layout(model):
    """What torchvision's resnet state_dict looks like for this model: a 7x7 stem conv1 + bn1, no
    conv2/conv3 stem, the same stage names, and an fc classifier."""
    sd = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone()
          for k, v in model.state_dict().items() if not k.startswith(("conv2.", "conv3.", "bn2.", "bn3."))}
    sd["conv1.weight"] = torch.randn(8, 3, 7, 7)
    sd["fc.weight"], sd["fc.bias"] = torch.randn(10, 32), torch.randn(10)
    return sd


def test_load_pretrained_torchvision_layout(tmp_path):
    model = _small_bottleneck()
    sd = _torchvision_layout(model)
    torch.save(sd, tmp_path / "rn.pth")
    report = load_pretrained(model, tmp_path / "rn.pth")
    own = model.state_dict()
    assert torch.equal(own["layer1.1.conv2.weight"], sd["layer1.1.conv2.weight"])
    assert torch.equal(own["layer2.0.downsample.1.running_mean"], sd["layer2.0.downsample.1.running_mean"])
    # the deep stem is not in the file: reported, not loaded
    assert {"conv1.weight", "conv2.weight", "conv3.weight", "bn1.weight"} <= set(report.missing)
    assert not torch.equal(own["conv1.weight"][..., :3, :3], sd["conv1.weight"][..., :3, :3])
    assert {"fc.weight", "fc.bias", "conv1.weight"} <= set(report.unexpected)
    assert len(report.loaded) == len(own) - len(report.missing)
    assert "loaded" in str(report)


def test_load_pretrained_errors(tmp_path):
    model = _small_bottleneck()
    sd = _torchvision_layout(model)
    sd["layer2.0.conv1.weight"] = torch.randn(5, 16, 1, 1)
    torch.save({"state_dict": sd}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="layer2.0.conv1.weight"):
        load_pretrained(model, tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError):
        load_pretrained(model, tmp_path / "nope.pth")
