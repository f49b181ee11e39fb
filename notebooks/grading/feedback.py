"""An nbgrader preprocessor for `nbgrader generate_feedback` that keeps hidden tests out of feedback.

nbgrader's default feedback renders the autograded notebook, where autograde has put the hidden
tests back: their source (`### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS`) and, when one fails,
a traceback quoting the failing line. `HideHiddenTests` removes the hidden regions from every
cell's source and replaces an error output whose traceback or message quotes a hidden line by a
one-line notice ("a hidden test failed: AssertionError"), so the feedback still shows which test
cell failed and its score (GetGrades), but no hidden-test source. Configured in
notebooks/nbgrader_config.py:

    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
"""

import re

from nbgrader.preprocessors import NbGraderPreprocessor

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def split_hidden(source: str) -> tuple[str, list[str]]:
    """(source without its hidden regions, the stripped non-empty lines removed)."""
    kept, hidden, inside = [], [], False
    for line in source.split("\n"):
        if BEGIN in line:
            if inside:
                raise ValueError("nested BEGIN HIDDEN TESTS")
            inside = True
        elif END in line:
            if not inside:
                raise ValueError("END HIDDEN TESTS without BEGIN")
            inside = False
        elif inside:
            if line.strip():
                hidden.append(line.strip())
        else:
            kept.append(line)
    if inside:
        raise ValueError("BEGIN HIDDEN TESTS without END HIDDEN TESTS")
    return "\n".join(kept), hidden


def quotes(text: str, lines: list[str]) -> bool:
    text = ANSI.sub("", text)
    return any(line in text for line in lines)


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden-test source and the error outputs that quote it (see the module docstring)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            return cell, resources
        cell.source, hidden = split_hidden(cell.source)
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                text = "\n".join(out.get("traceback", [])) + "\n" + out.get("evalue", "")
                if quotes(text, hidden):
                    out = {"output_type": "stream", "name": "stderr",
                           "text": f"a hidden test failed: {out.get('ename', 'error')}\n"}
            elif quotes(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")), hidden):
                continue  # printed output that quotes hidden source
            outputs.append(out)
        from nbformat import from_dict
        cell.outputs = [from_dict(o) for o in outputs]
        return cell, resources
