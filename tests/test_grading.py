"""notebooks/grading/feedback.py: feedback keeps no hidden-test source (unit level; no nbgrader run)."""

import nbformat
import pytest

from notebooks.grading.feedback import FigureAltText, HideHiddenTests, plain_sentence, split_hidden

CELL = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(3) == 9, 'secret'\n### END HIDDEN TESTS"


def test_hidden_region_and_quoting_traceback_removed():
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="secret",
                                           traceback=["\x1b[0;32m----> 3\x1b[0m assert f(3) == 9, 'secret'"])]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.source == "assert f(1) == 2"
    assert "f(3)" not in str(cell.outputs) and "AssertionError" in str(cell.outputs)


def test_visible_failure_kept():
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="",
                                           traceback=["----> 1 assert f(1) == 2"])]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].output_type == "error"


def test_unclosed_region_is_an_error():
    with pytest.raises(ValueError, match="without END"):
        split_hidden("### BEGIN HIDDEN TESTS\nassert 0")


# the residual traceback: IPython quotes the lines around the failing one
CONTEXT = ["\x1b[31mAssertionError\x1b[39m   Traceback (most recent call last)",
           "Cell In[5], line {n}\n{a}1 assert f(1) == 2\n      2 ### BEGIN HIDDEN TESTS\n{b}3 assert f(3) == 9, 'secret'\n"
           "      4 ### END HIDDEN TESTS\n",
           "\x1b[31mAssertionError\x1b[39m: {msg}"]


def _error(failing_line, msg):
    a, b = ("----> ", "      ") if failing_line == 1 else ("      ", "\x1b[32m----> \x1b[39m")
    tb = [t.format(n=failing_line, a=a, b=b, msg=msg) for t in CONTEXT]
    return nbformat.v4.new_output("error", ename="AssertionError", evalue=msg, traceback=tb)


def test_a_visible_failure_keeps_its_message_without_the_hidden_context():
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [_error(1, "visible message")]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    (out,) = cell.outputs
    text = "\n".join(out.traceback)
    assert out.output_type == "error" and "visible message" in text and "----> 1 assert f(1) == 2" in text
    assert "f(3)" not in text and "HIDDEN" not in text and "secret" not in text


def test_a_hidden_failure_shown_in_context_becomes_a_notice():
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [_error(3, "secret")]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert [o.output_type for o in cell.outputs] == ["stream"]
    assert cell.outputs[0].text == "a hidden test failed: AssertionError\n"


def test_printed_output_quoting_hidden_source_is_dropped():
    cell = nbformat.v4.new_code_cell(CELL)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="assert f(3) == 9, 'secret'\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="fine\n")]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert [o.text for o in cell.outputs] == ["fine\n"]


def _figure(source, metadata=None):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"},
                                           metadata=metadata or {})]
    return cell


def _alts(nb):
    FigureAltText().preprocess(nb, {})
    return [o.metadata.get("image/png", {}).get("alt") for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_figures_get_alt_text_from_a_comment_or_the_text_above():
    nb = nbformat.v4.new_notebook(cells=[
        _figure("draw()"),                                            # nothing above: no alt text
        nbformat.v4.new_markdown_cell("## 2. The *spectrum* of $A$"),
        _figure("# NBVAL_IGNORE_OUTPUT\n# Figure: singular values, log scale\ndraw()"),
        _figure("draw()"),
        _figure("draw()", metadata={"image/png": {"alt": "the author's own"}}),
    ])
    assert _alts(nb) == [None, "Figure: singular values, log scale", "Figure: The spectrum of A", "the author's own"]


def test_plain_sentence_is_short_plain_text():
    assert plain_sentence("See [the paper](https://x.org) and `hamlib.nmf`. Then more.") == "See the paper and hamlib.nmf."
    assert plain_sentence("## 4. Recovery\n\nNow hide *half* of the pixels: we observe $Y$.") == "Now hide half of the pixels"
    assert len(plain_sentence("word " * 100)) == 200


def test_a_short_hidden_line_does_not_hide_a_visible_failure():
    cell = nbformat.v4.new_code_cell("assert g(1) == (2)\n### BEGIN HIDDEN TESTS\nassert g(\n    3) == 9\n)\n### END HIDDEN TESTS")
    tb = ["AssertionError   Traceback", "Cell In[2], line 1\n----> 1 assert g(1) == (2)\n      2 ### BEGIN HIDDEN TESTS\n"
          "      3 assert g(\n      4     3) == 9\n      5 )\n", "AssertionError: "]
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=tb)]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    (out,) = cell.outputs
    assert out.output_type == "error"
    assert out.traceback[1] == "Cell In[2], line 1\n----> 1 assert g(1) == (2)\n"
