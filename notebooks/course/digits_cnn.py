"""Real CNN feature maps without a download: a tiny CNN trained in the notebook on scikit-learn's digits (notebook 01).

- `load_digits_tensors()`: the 1797 8x8 digits as (1797, 1, 8, 8) images in [0, 1] and labels.
- `DigitsCNN`, `train_digits_cnn(DigitsConfig())`: two 3x3 conv + ReLU layers, global
  pooling, a linear classifier; Adam on 75% of the digits, returns (model, test accuracy).
- `digit_mosaic(n)`: an (8n, 8n) scene of n x n digits; `feature_matrix(model, image)`:
  its feature map as the paper's matrix X (d, N), whose spectrum notebook 01 examines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from hamlib.layers import reference_init


class DigitsCNN(nn.Module):
    """Two 3x3 conv + ReLU layers (1 -> 32 -> 64 channels), global average pooling, a linear classifier.

    Fully convolutional up to the pooling, so `features` runs on images of any size.
    """

    def __init__(self, width=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.head = nn.Linear(2 * width, 10)

    def features(self, x):  # (B, 1, H, W) -> (B, 2*width, H, W), non-negative
        return F.relu(self.conv2(F.relu(self.conv1(x))))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def load_digits_tensors():
    """scikit-learn's 1797 digits as images (1797, 1, 8, 8) in [0, 1] and labels (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    return x, torch.tensor(d.target)


@dataclass
class DigitsConfig:
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-2
    test_fraction: float = 0.25
    width: int = 32  # conv1 channels; conv2 has twice as many (d of the feature matrix)
    seed: int = 0


def train_digits_cnn(cfg: DigitsConfig = DigitsConfig()):
    """Train `DigitsCNN` with Adam on 75% of the digits; returns (model in eval mode, test accuracy)."""
    x, y = load_digits_tensors()
    g = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(x), generator=g)
    n_test = int(cfg.test_fraction * len(x))
    test, train = perm[:n_test], perm[n_test:]
    torch.manual_seed(cfg.seed)
    model = reference_init(DigitsCNN(cfg.width))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    for _ in range(cfg.epochs):
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    return model, acc


def digit_mosaic(n=8, seed=0):
    """An (8n, 8n) image tiling n x n random digits: a 'scene' with several objects."""
    x, _ = load_digits_tensors()
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: n * n]
    tiles = x[idx, 0].reshape(n, n, 8, 8)            # (n, n, 8, 8)
    return tiles.permute(0, 2, 1, 3).reshape(8 * n, 8 * n)  # rows of tiles -> one image


@torch.no_grad()
def feature_matrix(model, image):
    """The feature map of `image` (H, W) as the paper's matrix X (d, N = H*W), float64."""
    f = model.features(image[None, None].float())  # (1, 1, H, W) -> (1, d, H, W)
    return f[0].flatten(1).double()                  # (d, H, W) -> (d, H*W)
