"""The course's tasks, one registry: a name, what it asks of the network, and its configs.

    legend1   one-colour legend: every gray shape takes the one legend colour (a global summary suffices)
    legend2   two-colour legend: a gray shape takes the colour of the legend shape of its kind
              (the network must bind shape to colour, which one global average cannot do)
    texture   texture by legend on real pictures (`hamlib.seg.texture`): a gray patch takes the colour of
              the legend swatch with its texture (brick, grass, gravel, stars from scikit-image)
    marker    notebook 05's marker task: every pixel's label is the class of one 2 x 2 marker far away

`TASKS[name].full()` is the config of the shipped checkpoints (legend tasks) or of notebook 05
(marker); `TASKS[name].quick(steps)` the small CPU config with `steps` training steps (marker:
iterations) that the grids and the notebooks' quick mode train. A legend config is a
`hamlib.seg.train.TrainConfig`, a marker config a `marker.MarkerConfig`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from hamlib.seg.train import CONFIGS, get_config
from .marker import MarkerConfig

LEGEND_BASES = ("quick", "legend_full")


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    description: str
    full: Callable[[], object]             # the checkpoints' (or the notebook's) config
    quick: Callable[[int], object]         # the small CPU config with the given number of steps


def legend_config(task: str, steps: int, base: str = "quick"):
    """A legend (or texture) task's TrainConfig from a named base (`quick`: tiny ResNet on a CPU; `legend_full`:
    wider, 20000 images) with `steps` training steps (the poly schedule spans them); no
    evaluation or checkpoints during training."""
    if task not in ("legend1", "legend2", "texture"):
        raise ValueError(f"task must be one of ('legend1', 'legend2', 'texture'), got {task!r}")
    if base not in LEGEND_BASES:
        raise ValueError(f"base must be one of {LEGEND_BASES}, got {base!r}")
    cfg = dataclasses.replace(CONFIGS[base](), steps=steps, log_every=max(steps // 10, 1), ckpt_every=0,
                              eval_every=0)
    cfg.legend = dataclasses.replace(cfg.legend, one_colour=task == "legend1")
    if task == "texture":
        cfg = dataclasses.replace(cfg, dataset="texture", texture=CONFIGS["texture"]().texture)
    return cfg


def _legend2_full():
    """`legend_full`: the two-colour task, 4000 steps of batch 32."""
    return get_config("legend_full")


def _legend1_full():
    """`legend_full`'s network and data size on the one-colour task, 2000 steps (it is learned sooner)."""
    cfg = get_config("legend_full", steps=2000)
    cfg.legend = dataclasses.replace(cfg.legend, one_colour=True)
    return cfg


def _texture_full():
    """The `texture` config: quick's network, 2000 images, 1000 steps: its checkpoints are CPU-sized
    (a run takes about 30 s on one core), so `full()` and `quick(1000)` train the same model."""
    return get_config("texture")


TASKS = {
    "legend1": Task("legend1", "one-colour legend", _legend1_full, lambda steps: legend_config("legend1", steps)),
    "legend2": Task("legend2", "two-colour legend", _legend2_full, lambda steps: legend_config("legend2", steps)),
    "texture": Task("texture", "texture by legend (real pictures)", _texture_full,
                    lambda steps: legend_config("texture", steps)),
    "marker": Task("marker", "marker task (notebook 05)", MarkerConfig,
                   lambda steps: MarkerConfig(iters=steps, eval_every=steps)),
}


def task(name: str) -> Task:
    """TASKS[name], or a ValueError naming the known tasks."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {name!r}")
    return TASKS[name]
