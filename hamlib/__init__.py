"""hamlib: Hamburger (ICLR 2021) in PyTorch -- matrix decompositions as global context."""

from .attention import NonLocal2d, SelfAttention2d
from .context import context_block
from .ham import Hamburger
from .mixers import SeqTransformer, make_mixer
from .md import CD2D, NMF2D, VQ2D, MatrixDecomposition2D, cd, nmf, random_bases, vq
from .runtime import full_scale, pick_device, seed_everything

__version__ = "0.1.0"

__all__ = ["nmf", "vq", "cd", "random_bases", "MatrixDecomposition2D", "NMF2D", "VQ2D", "CD2D", "Hamburger",
           "SelfAttention2d", "NonLocal2d", "context_block", "make_mixer", "SeqTransformer", "pick_device", "full_scale", "seed_everything"]
