"""GAN metrics: Frechet Inception Distance and Inception Score, on features from any network.

FID (Heusel et al. 2017) fits a Gaussian to the features of real and of generated
images and measures

    FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})

IS (Salimans et al. 2016) is exp(E_x KL(p(y|x) || p(y))) over the class posteriors
of the generated images: high when each image is confidently one class and the
classes are diverse.

The features come from a *feature extractor*: any callable x -> (features (B, F),
logits (B, K)) that takes images in [-1, 1] at the GAN's resolution.
- `PenultimateFeatures(model)` turns a classifier whose last layer is `model.fc`
  (torchvision layout: Inception-v3, ResNets) into one; load torchvision-layout
  weights from a local file with `load_weights(model, path)`. The paper's
  numbers use Inception-v3 at 299 px (the HamGAN paper, Geng et al., ICLR 2021):
  `hamlib.gan.inception.inception_v3(path)` builds it (torchvision's layout,
  without torchvision) from a local weights file; hamlib ships no weights.
- `DigitsClassifier`: a small CNN hamlib trains on the same data for the offline
  quick configuration. Its FID is a *relative* measure (the same extractor for
  every model of one experiment), not comparable to Inception FIDs.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# The two formulas
# ---------------------------------------------------------------------------


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu (F,), Sigma (F, F)) of a (N, F) array of features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, F), got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), via scipy.linalg.sqrtm.

    If S1 S2 is near-singular (sqrtm returns non-finite values), eps * I is added to
    both covariances, as the reference FID code does; a tiny imaginary part from
    round-off is dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape} {mu2.shape}, sigma {s1.shape} {s2.shape}")
    with warnings.catch_warnings():  # singular products (e.g. a collapsed generator) are handled below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(s1.shape[0])
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def inception_score(logits, splits: int = 1) -> tuple[float, float]:
    """(mean, std) over `splits` of exp(E_x KL(p(y|x) || p(y))) from (N, K) logits."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    if logits.dim() != 2 or logits.shape[0] < splits:
        raise ValueError(f"logits must be (N >= splits, K), got shape {tuple(logits.shape)}")
    scores = []
    for part in logits.chunk(splits):
        logp = part.log_softmax(1)                        # log p(y|x)
        logpy = logp.exp().mean(0).log()                  # log p(y)
        kl = (logp.exp() * (logp - logpy)).sum(1).mean()
        scores.append(kl.exp().item())
    return float(np.mean(scores)), float(np.std(scores))


# ---------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------


class PenultimateFeatures(nn.Module):
    """Wrap a classifier with a final linear layer `fc`: x in [-1, 1] -> (input of fc, fc's logits).

    Images are resized bilinearly to `size` (299 for Inception-v3) and grey images
    repeated to 3 channels. torchvision's Inception-v3 weights expect exactly this
    [-1, 1] range when built with transform_input=False.
    """

    def __init__(self, model: nn.Module, size: int | None = 299):
        super().__init__()
        if not isinstance(getattr(model, "fc", None), nn.Linear):
            raise ValueError(f"{type(model).__name__} has no final linear layer `fc`")
        self.model, self.size = model.eval(), size
        self._features = None
        model.fc.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output):
        self._features = inputs[0].flatten(1)

    @torch.no_grad()
    def forward(self, x):
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)                      # (B, 1, R, R) -> (B, 3, R, R)
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        logits = self.model(x)
        logits = getattr(logits, "logits", logits)        # torchvision's InceptionOutputs in train mode
        return self._features, logits


def load_weights(model: nn.Module, path, strict: bool = True) -> nn.Module:
    """Load a local state-dict file (torchvision layout, e.g. ``inception_v3_google-*.pth``) into `model`."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    model.load_state_dict(state, strict=strict)
    return model.eval()


class DigitsClassifier(nn.Module):
    """A small CNN for (B, C, R, R) images in [-1, 1]; forward returns (features (B, F), logits (B, K))."""

    def __init__(self, num_classes=10, img_channels=1, width=32, features=64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(img_channels, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),             # (B, 2w, 2, 2) -> (B, 8w)
            nn.Linear(8 * width, features), nn.ReLU())
        self.fc = nn.Linear(features, num_classes)

    def forward(self, x):
        h = self.body(x)
        return h, self.fc(h)


def train_classifier(dataset, num_classes=10, steps=200, batch_size=64, lr=2e-3, seed=0, device="cpu"):
    """Train a DigitsClassifier on a (x, y) TensorDataset with Adam; returns it in eval mode.

    Training uses small random shifts so the features do not overfit the exact pixels.
    """
    x_all, y_all = dataset.tensors
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitsClassifier(num_classes, x_all.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(y_all), (batch_size,), generator=g)
        x = x_all[idx]
        dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
        x = torch.roll(x, shifts=(dx, dy), dims=(2, 3))
        _, logits = net(x.to(device))
        loss = F.cross_entropy(logits, y_all[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def accuracy(classifier, dataset, batch_size=512) -> float:
    x, y = dataset.tensors
    dev = next(classifier.parameters()).device
    pred = torch.cat([classifier(x[i:i + batch_size].to(dev))[1].argmax(1).cpu() for i in range(0, len(y), batch_size)])
    return (pred == y).float().mean().item()


# ---------------------------------------------------------------------------
# Putting them together
# ---------------------------------------------------------------------------


@torch.no_grad()
def extract(extractor, images, batch_size=256):
    """Run the extractor over (N, C, R, R) images in batches -> (features (N, F), logits (N, K)) on CPU."""
    feats, logits = [], []
    dev = next(extractor.parameters()).device if isinstance(extractor, nn.Module) else torch.device("cpu")
    for i in range(0, len(images), batch_size):
        f, l = extractor(images[i:i + batch_size].to(dev))
        feats.append(f.float().cpu())
        logits.append(l.float().cpu())
    return torch.cat(feats), torch.cat(logits)


@torch.no_grad()
def generate(G, n, num_classes, seed=0, batch_size=256, device="cpu"):
    """n samples from G (in its current mode), labels cycling 0..K-1, noise from a private generator.

    Returns (images (n, C, R, R) on CPU, labels (n,))."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    z = torch.randn(n, G.z_dim, generator=g)
    out = [G(z[i:i + batch_size].to(device), y[i:i + batch_size].to(device)).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out), y


def fid_and_is(G, extractor, real_stats, n=1000, num_classes=10, seed=0, device="cpu") -> dict:
    """FID against real_stats = (mu, Sigma) and IS, of n samples of G (call G.eval() first for the
    deterministic, EMA-style sampling). Returns {"fid", "is"}."""
    images, _ = generate(G, n, num_classes, seed=seed, device=device)
    f, logits = extract(extractor, images)
    mu, sigma = feature_stats(f.numpy())
    return {"fid": frechet_distance(mu, sigma, *real_stats), "is": inception_score(logits)[0]}
