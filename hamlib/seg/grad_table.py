"""`python -m hamlib.seg.grad_table`: the published name of `python -m hamlib.experiments.grad_table`.

An entry point kept so the documented command keeps working; the driver lives in
`hamlib.experiments.grad_table`. Nothing in hamlib.seg imports this file: it is the one
place under seg/ that reaches up into the experiments.
"""

from hamlib.experiments.grad_table import main

if __name__ == "__main__":
    main()
