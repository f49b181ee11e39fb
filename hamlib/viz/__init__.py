"""Pictures and widget callbacks for the notebooks (floor 3).

One module per notebook topic; the callbacks are plain functions that return
figures or numbers, unit-tested without a browser, and the notebook cells only
wire them to ipywidgets.
"""
