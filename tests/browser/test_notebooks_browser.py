"""Every notebook with widgets, as a student meets it: JupyterLab, Run All Cells, move each widget.

nbval proves a notebook's code runs; this proves that its widgets render, that moving each one
redraws what it drives (figure or printed text), and that no cell shows an error. A widget is
found by its ipywidgets kind (slider, dropdown, ...), so a notebook's new widget is covered
without a change here; EXPECTED pins the CSS classes each notebook promises (w.add_class).
"""

import json
import re

import pytest

import labdriver as ld
from labdriver import NOTEBOOKS

# notebook -> CSS classes its widgets carry; each must be on a rendered, moved control
EXPECTED = {
    "01_low_rank.ipynb": ["rank-slider"],
    "02_nmf.ipynb": ["nmf-faces"],
    "03_vq_cd.ipynb": ["vq-temperature"],
    "04_hamburger_vs_attention.ipynb": ["query-row", "query-col"],
    "05_one_step_gradient.ipynb": ["k-slider"],
    "06_hamnet.ipynb": ["seg-pixel", "seg-pixel-texture"],
    "07_hamgan.ipynb": ["gan-class", "gan-latent"],
    "09_sequences.ipynb": ["mixers-view"],
}


def uses_widgets(path):
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return re.search(r"^\s*(import ipywidgets|from ipywidgets import)", code, re.M) is not None


WIDGET_NOTEBOOKS = sorted({p.name for p in NOTEBOOKS.glob("*.ipynb") if uses_widgets(p)}
                          | {n for n in EXPECTED if (NOTEBOOKS / n).exists()})


def test_the_expected_notebooks_are_tested():
    missing = [n for n in EXPECTED if n not in WIDGET_NOTEBOOKS]
    assert not missing, f"notebooks with expected widgets are missing: {missing}"


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS, indirect=True)
def test_widgets_redraw_without_errors(notebook, shots):
    notebook.wait_done(timeout=600_000)
    assert notebook.errors() == [], f"{notebook.name}: a cell shows an error after Run All"
    moved = ld.check_widgets(notebook, shots, expect_classes=EXPECTED.get(notebook.name, ()))
    covered = {c for m in moved for c in m.classes}
    assert set(EXPECTED.get(notebook.name, ())) <= covered
    print(f"{notebook.name}:", *moved, sep="\n  ")
