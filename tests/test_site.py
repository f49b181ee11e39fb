"""The site builder's pieces that need no browser: slide selection, references, staging."""

import json

import nbformat

from experiments import site, slides

v4 = nbformat.v4


def test_untagged_notebook_gets_first_cell_and_summary():
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("# 01 · T"), v4.new_code_cell("x"),
                                v4.new_markdown_cell("## Summary\n- a"), v4.new_markdown_cell("## References\n1. x")])
    cells, tagged = slides.slide_cells(nb)
    assert not tagged and [c.source[:6] for c in cells] == ["# 01 ·", "## Sum"]


def test_tagged_cells_in_order():
    nb = v4.new_notebook(cells=[v4.new_markdown_cell("a", metadata={"tags": ["slide"]}), v4.new_markdown_cell("b"),
                                v4.new_code_cell("c", metadata={"tags": ["x", "slide"]})])
    cells, tagged = slides.slide_cells(nb)
    assert tagged and [c.source for c in cells] == ["a", "c"]


def test_markdown_keeps_maths_for_mathjax():
    out = slides.markdown("$a_1 * b_2 * c$ and\n\n$$\\sum_i x_i < y$$")
    assert r"\(a_1 * b_2 * c\)" in out and r"\[\sum_i x_i &lt; y\]" in out and "<em>" not in out


def test_references_cell_is_parsed(tmp_path):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(v4.new_notebook(cells=[v4.new_markdown_cell("# 01 · x [in text](https://a.org)"),
                                          v4.new_markdown_cell("## Summary"),
                                          v4.new_markdown_cell("## References\n\n1. [Geng et al. (2021). Ham](https://arxiv.org/abs/2109.04553)\n"
                                                               "2. [Lee & Seung (1999). NMF](https://doi.org/10.1038/44565)")]), path)
    assert site.references(path) == ([("Geng et al. (2021). Ham", "https://arxiv.org/abs/2109.04553"),
                                      ("Lee & Seung (1999). NMF", "https://doi.org/10.1038/44565")], True)
    nbformat.write(v4.new_notebook(cells=[v4.new_markdown_cell("# 01 · x [in text](https://a.org)")]), path)
    assert site.references(path) == ([("in text", "https://a.org")], False)


def test_every_notebook_is_staged_with_links(tmp_path):
    nbs = site.stage(tmp_path / "src")
    assert nbs == site.notebooks() and len(nbs) >= 8
    toc = (tmp_path / "src" / "_toc.yml").read_text()
    for nb in nbs:
        assert f"notebooks/{nb.stem}" in toc
        staged = json.loads((tmp_path / "src" / "notebooks" / nb.name).read_text())
        assert f"student/{nb.name}" in "".join(staged["cells"][1]["source"])
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for c in staged["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert "automodule:: hamlib.grad" in (tmp_path / "src" / "api.md").read_text()
    assert "automodule:: hamlib.bench" not in (tmp_path / "src" / "api.md").read_text()
