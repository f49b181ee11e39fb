"""Experiment drivers: the runs behind the notebooks' claims and experiments/RESULTS.md.

Scripts, run from the repository root as `python -m experiments.NAME`; not installed. They
import `hamlib` and `notebooks.course`, never the other way round.

bench.py            the blocks side by side (the paper's efficiency table)
grid.py             every table's grid: heads x seeds of one task (tasks.TASKS), resumable
vq_diagnostics.py   VQ's assignment hardness and gradient flow, NMF's gradient modes' cost
checkpoints.py      train, record, re-check and tabulate the shipped checkpoints of both wings
results.py          writes RESULTS.md (generated tables from the manifest, recorded ones as text)
trainer_compile.py  what --compile gains in the trainers
"""
