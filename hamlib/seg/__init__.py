"""HamNet: semantic segmentation with a Hamburger head (the paper's reference recipe).

backbone.py  dilated ResNet-50/101 with a deep stem, a tiny ResNet for CPUs, ImageNet loader
heads.py     HamNet head and Light-Ham head, each around a swappable context block
model.py     backbone + head + upsampling, built from a ModelConfig
synthetic.py the colour-by-legend task: a pixel's class needs global context
texture.py   the same question on real textures from scikit-image (texture by legend)
data.py      PASCAL VOC 2012 / SBD trainaug, the reference's augmentation
metrics.py   confusion matrix, mIoU, single-scale and MSFlip prediction, VOC PNGs
train.py     `python -m hamlib.seg.train --config quick` (import hamlib.seg.train for TrainConfig, train)

The context blocks the heads hold come from `hamlib.context`. Experiments on this package are
scripts outside it; hamlib.seg imports neither them nor hamlib.gan.
"""

from .backbone import ResNet, load_pretrained, resnet50, resnet101, resnet_tiny
from .heads import HamNetHead, HeadConfig, LightHamHead
from .metrics import confusion_matrix, evaluate, iou_from_confusion, predict, save_voc_png, write_pngs
from .model import ModelConfig, SegModel, build_model, count_params
from .synthetic import LegendConfig, LegendDataset, make_legend_dataset
from .texture import TextureConfig, TextureDataset, make_texture_dataset

__all__ = ["ResNet", "resnet50", "resnet101", "resnet_tiny", "load_pretrained", "HamNetHead",
           "LightHamHead", "HeadConfig", "ModelConfig", "SegModel", "build_model", "count_params",
           "LegendConfig", "LegendDataset", "make_legend_dataset", "TextureConfig", "TextureDataset",
           "make_texture_dataset", "confusion_matrix",
           "iou_from_confusion", "evaluate", "predict", "save_voc_png", "write_pngs"]
