"""notebooks/grading/feedback.py: feedback keeps no hidden-test source (unit level; no nbgrader run)."""

import nbformat
import pytest

from notebooks.grading.feedback import HideHiddenTests, split_hidden

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
