"""nbgrader preprocessors for `nbgrader generate_feedback`: no hidden tests in feedback, figures with alt text.

nbgrader's default feedback renders the autograded notebook, where autograde has put the hidden
tests back: their source (`### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS`) and, when a test
cell fails, IPython's traceback of it, which quotes the failing line *and the lines around it*
(the "residual traceback": a failing visible assert shows the hidden lines below it as context).

`HideHiddenTests` removes the hidden regions from every test cell's source, and for each error
output of such a cell:

- if the failing line (IPython's `---->` line in the cell's own frame) is hidden, or no failing
  line can be found and the traceback quotes hidden source, the output becomes a one-line notice
  ("a hidden test failed: AssertionError"): the feedback says which test cell failed and its
  score (GetGrades), not the hidden assert or its message;
- if the failing line is visible, the error stays (the student sees the visible assert's message)
  with every traceback line that quotes hidden source or a marker removed.

Printed output that quotes hidden source is dropped.

`FigureAltText` gives every PNG/JPEG figure of a code cell an alt text, which nbconvert's
classic template (the base of nbgrader's feedback template) reads from the output's metadata
(`output.metadata["image/png"]["alt"]`) or the cell's (`cell.metadata["alt"]`); without one
nbconvert's HTML export warns "Alternative text is missing on N image(s)" and writes "No
description has been provided for this image". The text is, first found: the output's or the
cell's own `alt`; the cell's first comment line at its top (`# Figure: ...`; `# NBVAL_...` and other directives skipped); "Figure: " and the
first sentence of the nearest Markdown cell above (plain text, at most 200 characters).

Configured in notebooks/nbgrader_config.py:

    c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, FigureAltText, CSSHTMLHeaderPreprocessor]
"""

import re

from nbconvert.preprocessors import Preprocessor
from nbformat import from_dict
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, List

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ARROW = re.compile(r"^\s*-+>\s*\d*\s?(.*)$")      # IPython's current line: "----> 3 assert f(3) == 9"
PRIORITY = ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png", "image/jpeg", "text/plain"]
IMAGES = ("image/png", "image/jpeg")
ALT_MAX = 200
DIRECTIVE = re.compile(r"NBVAL_|%|noqa|type:|pragma|fmt:|-\*-")   # comment lines that are not a description


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
    """Does `text` (ANSI colours ignored) contain one of `lines`, or a hidden-test marker?"""
    text = ANSI.sub("", text)
    return BEGIN in text or END in text or any(line in text for line in lines)


LISTED = re.compile(r"^\s*(?:-*>\s*)?\d+\s?(.*)$")  # a source line as a traceback lists it: "      2 code"


def listed_code(line: str) -> str | None:
    """The source a traceback line lists (its `---->` mark and line number removed), or None."""
    m = LISTED.match(ANSI.sub("", line))
    return m.group(1).strip() if m else None


def failing_lines(traceback: list[str]) -> list[str] | None:
    """The lines IPython marks as failing (`---->`) in the first frame of a traceback (the
    cell that ran), ANSI colours removed; None when no frame has such a line."""
    for entry in traceback:
        marked = [m.group(1).strip() for line in ANSI.sub("", entry).split("\n") if (m := ARROW.match(line))]
        if marked:
            return marked
    return None


def hide_error(out: dict, hidden: list[str]) -> dict:
    """An error output of a test cell, as the feedback may show it (see the module docstring).
    A traceback's source lines are compared with the hidden lines whole (a hidden `)` does not
    make every line with a parenthesis hidden); without a `---->` line, any quotation counts."""
    tb = list(out.get("traceback", []))
    secret = set(hidden)
    failing = failing_lines(tb)
    if failing is None:
        hidden_failure = quotes("\n".join(tb) + "\n" + out.get("evalue", ""), hidden)
    else:
        hidden_failure = any(line in secret or BEGIN in line or END in line for line in failing)
    if hidden_failure:
        return {"output_type": "stream", "name": "stderr",
                "text": f"a hidden test failed: {out.get('ename', 'error')}\n"}

    def shown(line):
        return not (BEGIN in line or END in line or listed_code(line) in secret)

    redacted = ["\n".join(line for line in entry.split("\n") if shown(line)) for entry in tb]
    return dict(out, traceback=redacted)


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden-test source and what quotes it from test cells (see the module docstring)."""

    # nbconvert's HTML exporter configures this for every preprocessor; nbgrader's base class
    # declares it without `config=True`, which makes traitlets warn that the option is unknown
    display_data_priority = List(PRIORITY).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            return cell, resources
        cell.source, hidden = split_hidden(cell.source)
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                out = hide_error(out, hidden)
            elif quotes(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")), hidden):
                continue  # printed output that quotes hidden source
            outputs.append(out)
        cell.outputs = [from_dict(o) for o in outputs]
        return cell, resources


def plain_sentence(markdown: str) -> str:
    """The first sentence of a Markdown cell as plain text (its text under a heading, or the
    heading without its number; emphasis, code and math marks and link targets removed), up to
    its first '.', '!', '?', ':' or ';', at most ALT_MAX characters."""
    lines = markdown.split("\n")
    body = [line for line in lines if not re.match(r"\s*#", line)]      # the text under a heading, if any
    if not "".join(body).strip():                                     # else the heading, its number removed
        body = [re.sub(r"^\s*#+\s*(\d+(\.\d+)*\.?\s+)?", "", line) for line in lines]
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", "\n".join(body))   # links and images: their text
    text = re.sub(r"\\times\b", " x ", text)                              # TeX: x for times, other commands dropped
    text = re.sub(r"\\[a-zA-Z]+|\\[,;:!|]|[{}]", "", text)
    text = re.sub(r"\*+|`|\$", "", text)                                    # emphasis, code and math marks
    text = " ".join(text.split())
    m = re.match(r"(.+?[.:;!?])(\s|$)", text)
    sentence = (m.group(1) if m else text).rstrip(":;")
    return sentence if len(sentence) <= ALT_MAX else sentence[:ALT_MAX - 3].rstrip() + "..."


def _has_alt(out, cell) -> bool:
    md = out.get("metadata", {}) or {}
    return bool(cell.get("metadata", {}).get("alt") or md.get("alt")
                or any((md.get(mime) or {}).get("alt") for mime in IMAGES))


class FigureAltText(Preprocessor):
    """Alt text for figures in the feedback HTML (see the module docstring)."""

    enabled = Bool(True).tag(config=True)   # nbconvert's preprocessors are off unless enabled

    def preprocess(self, nb, resources):
        above = None   # the nearest Markdown cell above
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                above = cell.source
            elif cell.cell_type == "code":
                self.describe(cell, above)
        return nb, resources

    @staticmethod
    def describe(cell, above: str | None):
        alt = None
        for line in cell.source.strip().split("\n"):   # the leading comment lines, directives skipped
            line = line.strip()
            if not line.startswith("#"):
                break
            text = line.lstrip("#").strip()
            if text and not DIRECTIVE.match(text):
                alt = text
                break
        if alt is None and above and plain_sentence(above):
            alt = "Figure: " + plain_sentence(above)
        if alt is None:
            return
        for out in cell.get("outputs", []):
            mimes = [m for m in IMAGES if m in out.get("data", {})]
            if mimes and not _has_alt(out, cell):
                md = out.setdefault("metadata", {})
                for mime in mimes:
                    md.setdefault(mime, {})["alt"] = alt
