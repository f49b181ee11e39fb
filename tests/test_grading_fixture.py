"""nbgrader end to end on a fixture class, with this repository's notebooks/nbgrader_config.py (issue 24.3).

A temporary course folder: the repository's nbgrader_config.py, a small source notebook (two code
exercises with visible and hidden tests, a figure), `nbgrader generate_assignment`, three
submissions in `submitted/` (`good`: correct; `bad`: exercise 1 passes its visible test and fails
the hidden one, exercise 2 fails its visible test; `late`: correct, but its autograde is killed
while it runs), `nbgrader autograde`, `nbgrader generate_feedback`. nbgrader runs as the CLI in
this environment (`python -m nbgrader`), with PYTHONPATH=notebooks as the teacher's page says.
About 40 s, most of it nbgrader's start-up (each command opens the gradebook).
"""

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from notebooks.grading.feedback import split_hidden

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "notebooks" / "nbgrader_config.py"
A = "fx"  # the assignment (and notebook) name

SQUARE_TESTS = ('assert square(2) == 4, "visible: square(2) should be 4"\n### BEGIN HIDDEN TESTS\n'
                'assert square(3) == 9, "hidden message: square(3) should be 9"\n### END HIDDEN TESTS')
CUBE_TESTS = ('assert cube(2) == 8, "visible: cube(2) should be 8"\n### BEGIN HIDDEN TESTS\n'
              'assert cube(-1) == -1, "hidden message: negative numbers"\n### END HIDDEN TESTS')
FIGURE = "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([square(x) for x in range(4)])\nplt.show()"


def _meta(**kw):
    return {"nbgrader": {"schema_version": 3, **kw}}


def source_notebook():
    return new_notebook(cells=[
        new_markdown_cell("# Fixture"),
        new_code_cell("import matplotlib.pyplot as plt"),
        new_markdown_cell("### Exercise 1 (2 points): squares"),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                      metadata=_meta(solution=True, grade=False, locked=False, grade_id="ex1_solution")),
        new_code_cell(SQUARE_TESTS, metadata=_meta(solution=False, grade=True, locked=True, grade_id="ex1_tests", points=2)),
        new_markdown_cell("### Exercise 2 (3 points): cubes"),
        new_code_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION",
                      metadata=_meta(solution=True, grade=False, locked=False, grade_id="ex2_solution")),
        new_code_cell(CUBE_TESTS, metadata=_meta(solution=False, grade=True, locked=True, grade_id="ex2_tests", points=3)),
        new_markdown_cell("The squares of 0 to 3, drawn as a line."),
        new_code_cell(FIGURE),
        new_code_cell("# Figure: the cubes of 0 to 3\nplt.plot([cube(x) for x in range(4)])\nplt.show()"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def environment() -> dict:
    """nbgrader's environment as a teacher runs it: the course helpers and notebooks/grading on
    PYTHONPATH, `alembic` on PATH, and matplotlib's inline backend in the kernels (the test
    session's MPLBACKEND=Agg would keep the figures out of the notebooks)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "notebooks"), OMP_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(course: Path, *args, check=True) -> subprocess.CompletedProcess:
    env = environment()
    res = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True)
    if check:
        assert res.returncode == 0, f"nbgrader {args} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


def submit(course: Path, student: str, square: str, cube: str, first_cell: str | None = None):
    nb = nbformat.read(course / "release" / A / f"{A}.ipynb", as_version=4)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "ex1_solution":
            c.source = f"def square(x):\n    {square}"
        elif gid == "ex2_solution":
            c.source = f"def cube(x):\n    {cube}"
    if first_cell:
        nb.cells.insert(2, new_code_cell(first_cell))
    folder = course / "submitted" / student / A
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{A}.ipynb")


def scores(course: Path, student: str) -> dict:
    """{grade_id: auto score} and 'total' of a student's submission, from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(A, student)
        out = {g.name: g.auto_score for g in sub.notebooks[0].grades}
        out["total"], out["max"] = sub.score, sub.max_score
    return out


def text_of(path: Path) -> str:
    """An HTML file's text as a reader sees it (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    shutil.copyfile(CONFIG, root / "nbgrader_config.py")
    (root / "source" / A).mkdir(parents=True)
    nbformat.write(source_notebook(), root / "source" / A / f"{A}.ipynb")
    nbgrader(root, "generate_assignment", A)
    submit(root, "good", "return x * x", "return x ** 3")
    submit(root, "bad", "return x + 2", "return x ** 2")   # 2 + 2 == 4 passes the visible test of exercise 1
    log = {"autograde": nbgrader(root, "autograde", A).stderr,
           "feedback": nbgrader(root, "generate_feedback", A).stderr}
    return root, log


def test_the_released_notebook_has_no_hidden_tests(course):
    root, _ = course
    text = (root / "release" / A / f"{A}.ipynb").read_text()
    assert "visible: square(2) should be 4" in text
    assert "HIDDEN" not in text and "square(3)" not in text and "return x * x" not in text


def test_autograde_gives_full_points_to_the_correct_answer_and_takes_the_hidden_tests_points(course):
    root, _ = course
    assert scores(root, "good") == {"ex1_tests": 2, "ex2_tests": 3, "total": 5, "max": 5}
    # exercise 1 passes its visible test but not the hidden one: its 2 points are lost; exercise 2 fails visibly
    assert scores(root, "bad") == {"ex1_tests": 0, "ex2_tests": 0, "total": 0, "max": 5}


def test_feedback_shows_no_hidden_test_text(course):
    root, _ = course
    secrets = split_hidden(SQUARE_TESTS)[1] + split_hidden(CUBE_TESTS)[1] + [
        "BEGIN HIDDEN", "END HIDDEN", "hidden message", "square(3)", "cube(-1)"]
    pages = sorted((root / "feedback").glob(f"*/{A}/{A}.html"))
    assert [p.parts[-3] for p in pages] == ["bad", "good"]
    for page in pages:
        text = text_of(page)
        assert "visible: square(2) should be 4" in text  # the visible tests are shown
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{page.relative_to(root)} shows hidden-test text {leaked}"
    bad = text_of(root / "feedback" / "bad" / A / f"{A}.html")
    # the residual traceback: the visible failure keeps its message (its traceback lost the hidden context lines);
    # the hidden failure is one line
    assert "AssertionError: visible: cube(2) should be 8" in bad
    assert bad.count("a hidden test failed: AssertionError") == 1
    assert "Score: 0.0 / 2.0" in bad and "Score: 5.0 / 5.0" in text_of(root / "feedback" / "good" / A / f"{A}.html")


def test_nbgraders_default_feedback_would_show_them(course):
    """The control: without the configured preprocessors the same feedback quotes the hidden tests
    (so the test above could fail), and nbconvert warns about the figures' missing alt text."""
    root, _ = course
    res = nbgrader(root, "generate_feedback", A, "--CourseDirectory.feedback_directory=feedback_default",
                   "--GenerateFeedback.preprocessors=nbgrader.preprocessors.GetGrades",
                   "--GenerateFeedback.preprocessors=nbconvert.preprocessors.CSSHTMLHeaderPreprocessor")
    bad = text_of(root / "feedback_default" / "bad" / A / f"{A}.html")
    assert "### BEGIN HIDDEN TESTS" in bad and "hidden message: square(3) should be 9" in bad
    assert "Alternative text is missing on 2 image(s)" in res.stderr


def test_feedback_figures_carry_alt_text(course):
    root, log = course
    assert "Alternative text is missing" not in log["feedback"]
    page = (root / "feedback" / "good" / A / f"{A}.html").read_text()
    assert re.findall(r'<img [^>]*alt="([^"]*)"', page) == ["Figure: The squares of 0 to 3, drawn as a line.",
                                                           "Figure: the cubes of 0 to 3"]


def test_an_interrupted_autograde_is_skipped_silently_until_force(course, tmp_path):
    """autograde killed while it runs a submission (SIGKILL: a closed session, the OOM killer, a
    reboot; Ctrl-C lets nbgrader clean up) leaves the unexecuted copy in autograded/; the next
    autograde exits 0, logs 'Skipping existing assignment' at INFO level and leaves the
    submission with no auto score (0 of 5 in the gradebook); --force grades it."""
    root, _ = course
    hold, started = tmp_path / "hold", tmp_path / "started"
    hold.touch()
    submit(root, "late", "return x * x", "return x ** 3",
           first_cell=f"import os, pathlib, time\npathlib.Path({str(started)!r}).touch()\n"
                      f"while os.path.exists({str(hold)!r}):\n    time.sleep(0.1)")
    env = environment()
    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", A, "--student", "late"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "autograde did not reach the submission's cell"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)   # autograde and its kernel (a process group this test started)
        proc.wait(timeout=30)
        hold.unlink()
    assert (root / "autograded" / "late" / A / f"{A}.ipynb").exists()

    again = nbgrader(root, "autograde", A, "--student", "late")
    assert again.returncode == 0 and "Skipping existing assignment" in again.stderr
    assert scores(root, "late") == {"ex1_tests": None, "ex2_tests": None, "total": 0, "max": 5}

    nbgrader(root, "autograde", A, "--student", "late", "--force")
    assert scores(root, "late") == {"ex1_tests": 2, "ex2_tests": 3, "total": 5, "max": 5}
