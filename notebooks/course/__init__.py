"""Pictures and widget callbacks for the notebooks.

One module per notebook topic: lowrank (01), solvers (02, 03), context (04), gradients (05),
segmentation (06). The callbacks are plain functions that return numbers or
`matplotlib.figure.Figure`s (never pyplot state), unit-tested without a browser; the
notebook cells only wire them to ipywidgets. The models and training loops the pictures
show live in `hamlib.experiments`.
"""
