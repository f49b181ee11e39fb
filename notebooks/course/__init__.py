"""The course's helpers: the computations, pictures and widget callbacks the notebooks import.

Notebooks import them as `course.X` (their kernel runs in notebooks/), tests and scripts as
`notebooks.course.X` (from the repository root); the modules import each other relatively and
hamlib absolutely, and hamlib never imports them. One module per topic:

- lowrank (01), digits_cnn (01), solvers (02, 03), context (04), efficiency (04, 08),
  gradients and marker (05), segmentation and legend (05, 06), grad_table (06),
  checkpoints and gan_checkpoints (06, 07, 08), cheatsheet (08), tasks (the task registry).

Callbacks are plain functions that return numbers or `matplotlib.figure.Figure`s (never
pyplot state), unit-tested without a browser; notebook cells only wire them to ipywidgets.
The measurements the notebooks and the library's tests share (Jacobians, spectral radii,
Neumann sums, NMF affinity, context influence) are `hamlib.analysis`.
"""
