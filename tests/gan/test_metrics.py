"""FID against closed forms, IS against its extremes, feature extractors."""

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn as nn

from hamlib.gan.data import digits
from hamlib.gan.metrics import (PenultimateFeatures, accuracy, feature_stats, frechet_distance, inception_score,
                                load_weights, train_classifier)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    # Frechet distance of N(m1, diag a) and N(m2, diag b) = |m1 - m2|^2 + sum (sqrt a - sqrt b)^2
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    want = 1 + 4 + (1 + 1 + 4)
    assert frechet_distance(m1, np.diag(a), m2, np.diag(b)) == pytest.approx(want, abs=1e-9)


def test_fid_is_rotation_invariant_and_zero_for_equal_gaussians():
    Q = scipy.stats.special_ortho_group.rvs(4, random_state=0)
    a, b = np.diag([1.0, 2.0, 3.0, 4.0]), np.diag([4.0, 3.0, 2.0, 1.0])
    want = sum((np.sqrt([1, 2, 3, 4]) - np.sqrt([4, 3, 2, 1])) ** 2)
    assert frechet_distance(np.zeros(4), Q @ a @ Q.T, np.zeros(4), Q @ b @ Q.T) == pytest.approx(want, abs=1e-8)
    assert frechet_distance(np.ones(4), Q @ a @ Q.T, np.ones(4), Q @ a @ Q.T) == pytest.approx(0, abs=1e-8)


def test_fid_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (20000, 2))
    y = rng.normal(0, 2, (20000, 2)) + np.array([3.0, 0.0])
    assert frechet_distance(*feature_stats(x), *feature_stats(y)) == pytest.approx(9 + 2 * 1, abs=0.1)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="features"):
        feature_stats(np.zeros(5))


def test_inception_score_extremes():
    K = 4
    confident_diverse = torch.eye(K).repeat(5, 1) * 50      # each image sure of its class, classes uniform
    assert inception_score(confident_diverse)[0] == pytest.approx(K, rel=1e-6)
    one_class = torch.zeros(20, K)
    one_class[:, 0] = 50
    assert inception_score(one_class)[0] == pytest.approx(1.0, rel=1e-6)
    assert inception_score(torch.zeros(20, K))[0] == pytest.approx(1.0)  # uncertain: 1 as well


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_penultimate_features_and_weight_file(tmp_path):
    torch.manual_seed(0)
    model = Toy()
    path = tmp_path / "weights.pth"
    torch.save(model.state_dict(), path)
    other = load_weights(Toy(), path)
    ext = PenultimateFeatures(other, size=12)
    f, logits = ext(torch.rand(2, 1, 8, 8) * 2 - 1)          # grey images are repeated to RGB
    assert f.shape == (2, 6) and logits.shape == (2, 5)
    assert torch.allclose(other.fc(f), logits)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_weights(Toy(), tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="fc"):
        PenultimateFeatures(nn.Conv2d(1, 1, 1))


def test_digits_classifier_learns_the_digits():
    ds = digits(16)
    clf = train_classifier(ds, steps=150, seed=0)
    assert accuracy(clf, ds) > 0.9
    f, logits = clf(ds.tensors[0][:3])
    assert f.shape == (3, 64) and logits.shape == (3, 10)


def test_inception_v3_has_torchvision_layout_and_loads_a_weights_file(tmp_path):
    from hamlib.gan.inception import InceptionV3, inception_v3

    torch.manual_seed(0)
    net = InceptionV3()
    # torchvision's inception_v3 has 27,161,264 parameters, 3,326,696 of them in the auxiliary head
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696
    keys = net.state_dict().keys()
    assert {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.bn.running_var",
            "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.bias"} <= set(keys)
    state = dict(net.state_dict(), **{"AuxLogits.fc.weight": torch.zeros(1000, 768)})
    torch.save(state, tmp_path / "inception.pth")
    ext = inception_v3(tmp_path / "inception.pth", size=75)  # 75 px: the smallest input, to keep the test fast
    f, logits = ext(torch.rand(2, 3, 16, 16) * 2 - 1)
    assert f.shape == (2, 2048) and logits.shape == (2, 1000)
    assert torch.allclose(ext.model.fc(f), logits, atol=1e-5)
    with pytest.raises(FileNotFoundError, match="Inception-v3"):
        inception_v3(tmp_path / "missing.pth")
