"""HamGAN: Hamburger in a class-conditional GAN (SAGAN-style G, projection D), with FID and IS.

model.py (networks, losses, EMA) - data.py (digits, CIFAR-10, image folders) -
metrics.py (FID, IS, feature extractors) - train.py (configs, trainer, CLI).
"""

from .model import Discriminator, Generator

__all__ = ["Generator", "Discriminator"]
