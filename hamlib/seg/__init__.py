"""HamNet: semantic segmentation with a Hamburger head (the paper's reference recipe).

backbone.py  dilated ResNet-50/101 with a deep stem, a tiny ResNet for CPUs, ImageNet loader
heads.py     HamNet head, Light-Ham head, and the swappable context blocks
model.py     backbone + head + upsampling, built from a ModelConfig
synthetic.py the colour-by-legend task: a pixel's class needs global context
data.py      PASCAL VOC 2012 / SBD trainaug, the reference's augmentation
metrics.py   confusion matrix, mIoU, single-scale and MSFlip prediction, VOC PNGs
train.py     `python -m hamlib.seg.train --config quick` (import hamlib.seg.train for TrainConfig, train)
grad_table.py  `python -m hamlib.seg.grad_table`: the published name of the experiment driver
             `hamlib.experiments.grad_table` (an entry point only; nothing here imports it)

The experiments run on this package (every head on the legend task, the gradient table)
live in `hamlib.experiments`, their pictures in `hamlib.viz.segmentation`: hamlib.seg
never imports either.
"""

from .backbone import ResNet, load_pretrained, resnet50, resnet101, resnet_tiny
from .heads import HamNetHead, HeadConfig, LightHamHead
from .metrics import confusion_matrix, evaluate, iou_from_confusion, predict, save_voc_png, write_pngs
from .model import ModelConfig, SegModel, build_model, count_params
from .synthetic import LegendConfig, LegendDataset, make_legend_dataset

__all__ = ["ResNet", "resnet50", "resnet101", "resnet_tiny", "load_pretrained", "HamNetHead",
           "LightHamHead", "HeadConfig", "ModelConfig", "SegModel", "build_model", "count_params",
           "LegendConfig", "LegendDataset", "make_legend_dataset", "confusion_matrix",
           "iou_from_confusion", "evaluate", "predict", "save_voc_png", "write_pngs"]
