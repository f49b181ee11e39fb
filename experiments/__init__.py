"""Experiment drivers: the runs behind the notebooks' and the README's measured claims.

Nothing here goes into a model; a user's import of hamlib, hamlib.seg or hamlib.gan never
loads it. These modules train small networks, time and tabulate them; they import the
library (and `hamlib.measure`), never the other way round. Their pictures are in `hamlib.viz`.

legend.py      every context head on the colour-by-legend task: the head registry, run over
               seeds, summarise, the paper's ablation claims (notebooks 05, 06)
grad_table.py  `python -m hamlib.experiments.grad_table` (alias `python -m hamlib.seg.grad_table`):
               every solver x gradient mode, resumable, in parallel processes
marker.py      the marker task and MarkerNet: a pixel's label set by a marker far away (notebook 05)
digits_cnn.py  a tiny CNN trained in seconds on scikit-learn's digits, for real feature maps (notebook 01)
cheatsheet.py  the closing cheat sheet's tables: gradient modes read off their plans, and the paper's
               claims beside the course's results (checkpoint manifest, MACs, measured costs) (notebook 08)
"""
