"""The course's graded exercises (nbgrader) and their student versions.

- every instructor notebook `notebooks/NN_*.ipynb` follows the course conventions: an opening
  with `**After this notebook you can**`, `**Prerequisites:**`, `**Time:**`; a closing
  `## Summary`; 3-5 exercises `### Exercise NN.k (P points): title`, at least 3 of them graded
  automatically, every code solution followed by its graded test cell, unique grade ids, the
  points of each heading equal to the points its graded cells carry;
- the instructor versions store no error in a graded cell (nbval runs them in full);
- the committed student versions `notebooks/student/` are byte for byte what
  `notebooks/release.py` (nbgrader's GenerateAssignment) makes now;
- the negative control: each student version, run top to bottom in a fresh kernel (CPU quick
  mode, one thread) and continuing after errors, fails in every graded test cell, raises
  nothing but NotImplementedError in its solution cells, and runs every other cell cleanly.
  This executes every notebook (minutes): `pytest tests/test_exercises.py -k negative_control`
  selects it, `-k "not negative_control"` leaves it out. `python tests/test_exercises.py`
  prints the per-notebook report (grade_id -> what it raised).

The checking functions are tested on small fixture notebooks that pass and that fail.
"""

import copy
import importlib.util
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STUDENT = NOTEBOOKS / "student"

_spec = importlib.util.spec_from_file_location("hamlib_release", NOTEBOOKS / "release.py")
release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(release)

INSTRUCTOR = release.instructor_notebooks()
STUDENT_VERSIONS = sorted(STUDENT.glob(release.PATTERN))
# "### Exercise 05.2 (3 points): title", or "(3 + 1 points)" for code and written parts
HEADING = re.compile(r"^### Exercise (\d\d)\.(\d+) \((\d+(?:\.\d+)?(?: \+ \d+(?:\.\d+)?)*) points?\): \S", re.M)


# ---------------------------------------------------------------------------------------------
# what a cell is

def nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def role(cell) -> str | None:
    """'solution' (code to write), 'tests' (graded test code), 'answer' (graded written answer),
    'graded-solution' (code graded by running it), or None (an ordinary cell)."""
    m = nbgrader(cell)
    solution, grade = m.get("solution", False), m.get("grade", False)
    if cell["cell_type"] == "markdown":
        return "answer" if solution else None
    if solution:
        return "graded-solution" if grade else "solution"
    return "tests" if grade else None


def source(cell) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def number(path) -> str:
    return Path(path).name[:2]


# ---------------------------------------------------------------------------------------------
# the conventions (each returns a list of problems; empty = fine)

def opening_problems(nb, nn: str) -> list[str]:
    cells = nb["cells"]
    if not cells or cells[0]["cell_type"] != "markdown":
        return ["the first cell is not Markdown"]
    text = source(cells[0])
    lines = [line.strip() for line in text.splitlines()]
    problems = [] if re.match(rf"# {nn} · \S", text) else [f"the first cell does not start with '# {nn} · Title'"]
    problems += [f"the first cell lacks a line starting with {label}"
                for label in ("**After this notebook you can**", "**Prerequisites:**", "**Time:**")
                if not any(line.startswith(label) for line in lines)]
    after = next((i for i, line in enumerate(lines) if line.startswith("**After this notebook you can**")), None)
    if after is not None:
        bullets = 0
        for line in lines[after + 1:]:
            if line.startswith(("- ", "* ")):
                bullets += 1
            elif line and bullets:
                break
        if not 3 <= bullets <= 6:
            problems.append(f"**After this notebook you can** is followed by {bullets} bullets, not 3-6")
    return problems


LINK = re.compile(r"\[[^\]]+\]\((https?://[^)\s]+)\)")


def summary_problems(nb) -> list[str]:
    """The closing: a Markdown `## Summary` cell, then a last Markdown cell `## References`
    listing the works the notebook uses as a list of Markdown links (at least one)."""
    cells = nb["cells"]
    if not cells or cells[-1]["cell_type"] != "markdown" or not source(cells[-1]).lstrip().startswith("## References"):
        return ["the last cell is not Markdown starting with '## References'"]
    if len(cells) < 2 or cells[-2]["cell_type"] != "markdown" or not source(cells[-2]).lstrip().startswith("## Summary"):
        return ["the cell before the last is not Markdown starting with '## Summary'"]
    last = cells[-1]
    items = [l for l in source(last).splitlines() if re.match(r"\s*(?:[-*]|\d+\.)\s", l)]
    if not items or not all(LINK.search(l) for l in items):
        return ["'## References' is not a list whose every item has a Markdown link [title](https://...)"]
    return []


def exercise_problems(nb, nn: str) -> list[str]:
    """The exercises of notebook number `nn` (a string, '05')."""
    cells, problems = nb["cells"], []
    ids = [nbgrader(c).get("grade_id") for c in cells if role(c)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        problems.append(f"grade_id used twice: {dup}")
    for c in cells:
        r, gid = role(c), nbgrader(c).get("grade_id", "")
        if r and not re.match(rf"ex{nn}_\d+_", gid):
            problems.append(f"grade_id {gid!r} does not start with ex{nn}_<k>_")
        if r and nbgrader(c).get("schema_version") != 3:
            problems.append(f"{gid}: nbgrader schema_version is not 3")
        if r in ("tests", "answer", "graded-solution") and not nbgrader(c).get("points", 0) > 0:
            problems.append(f"{gid}: a graded cell without points")
        if r and "NBVAL_CHECK_OUTPUT" in source(c):
            problems.append(f"{gid}: an exercise cell carries # NBVAL_CHECK_OUTPUT")
        if r == "tests" and not nbgrader(c).get("locked"):
            problems.append(f"{gid}: a graded test cell that is not locked")
        if r == "solution":
            text = source(c)
            if "### BEGIN SOLUTION" not in text or "### END SOLUTION" not in text:
                problems.append(f"{gid}: a code solution without ### BEGIN SOLUTION / ### END SOLUTION")
            elif "def " not in text.split("### BEGIN SOLUTION")[0]:
                problems.append(f"{gid}: the function's def line is not outside the solution markers")
    # each code solution is followed by its graded test cell (other solution cells and Markdown may sit between)
    for i, c in enumerate(cells):
        if role(c) != "solution":
            continue
        nxt = next((d for d in cells[i + 1:] if d["cell_type"] == "code" and role(d) != "solution"), None)
        if nxt is None or role(nxt) != "tests":
            problems.append(f"{nbgrader(c)['grade_id']}: the next code cell after the solution is not a graded test cell")
    # headings: Exercise NN.1 .. NN.n, 3-5 of them, >= 3 graded automatically, points as in the gradebook
    headings = [(m.group(1), int(m.group(2)), sum(float(x) for x in m.group(3).split(" + ")))
                for c in cells if c["cell_type"] == "markdown" for m in HEADING.finditer(source(c))]
    if [h[0] for h in headings if h[0] != nn]:
        problems.append(f"exercise headings numbered for another notebook: {[h for h in headings if h[0] != nn]}")
    ks = [k for _, k, _ in headings]
    if ks != list(range(1, len(ks) + 1)):
        problems.append(f"exercises are numbered {ks}, not 1..n")
    if not 3 <= len(headings) <= 5:
        problems.append(f"{len(headings)} exercises (### Exercise {nn}.k (P points): title), not 3-5")
    points = {}
    for c in cells:
        if role(c) in ("tests", "answer", "graded-solution"):
            m = re.match(rf"ex{nn}_(\d+)_", nbgrader(c).get("grade_id", ""))
            if m:
                points[int(m.group(1))] = points.get(int(m.group(1)), 0) + float(nbgrader(c).get("points", 0))
    for _, k, p in headings:
        if points.get(k, 0) != p:
            problems.append(f"Exercise {nn}.{k}: the heading says {p:g} points, its graded cells carry {points.get(k, 0):g}")
    extra = sorted(set(points) - set(ks))
    if extra:
        problems.append(f"graded cells for exercises without a heading: {extra}")
    auto = {int(m.group(1)) for c in cells if role(c) == "tests" and nbgrader(c).get("points", 0) > 0
            for m in [re.match(rf"ex{nn}_(\d+)_", nbgrader(c).get("grade_id", ""))] if m}
    if len(auto) < 3:
        problems.append(f"{len(auto)} exercises graded automatically (a graded test cell with points), not >= 3")
    return problems


def stored_graded_output_problems(nb) -> list[str]:
    """An instructor version as executed by notebooks/execute.py: every exercise code cell ran
    and none stored an error."""
    problems = []
    for c in nb["cells"]:
        if c["cell_type"] == "code" and role(c):
            gid = nbgrader(c)["grade_id"]
            if c.get("execution_count") is None:
                problems.append(f"{gid}: not executed")
            errors = [o.get("ename") for o in c.get("outputs", []) if o["output_type"] == "error"]
            if errors:
                problems.append(f"{gid}: stored error {errors}")
    return problems


def convention_problems(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return opening_problems(nb, number(path)) + summary_problems(nb) + exercise_problems(nb, number(path))


# ---------------------------------------------------------------------------------------------
# the negative control

def run_student(path, cwd=None, timeout=1800):
    """Execute a notebook top to bottom in a fresh kernel, continuing after errors (CPU quick mode,
    progress bars off, one thread); returns the executed notebook."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, HAMLIB_FULL="0", TQDM_DISABLE="1", MPLBACKEND="Agg",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # the course's helpers are not installed: notebooks import them as `course` from notebooks/ (notebooks/README.md)
    paths = [str(ROOT), str(NOTEBOOKS)]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd or Path(path).parent)}})
    client.execute(env=env)
    return nb


def negative_control(nb) -> tuple[dict, list[str]]:
    """({grade_id: exception name or None} for the exercise cells, problems) of an executed
    student notebook: graded test cells must raise; code solution cells may raise only
    NotImplementedError; every other code cell must run cleanly."""
    report, problems = {}, []
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code":
            continue
        errors = [o.get("ename") for o in c.get("outputs", []) if o["output_type"] == "error"]
        err = errors[0] if errors else None
        r = role(c)
        if r:
            report[nbgrader(c)["grade_id"]] = err
        if r in ("tests", "graded-solution") and err is None:
            problems.append(f"{nbgrader(c)['grade_id']}: passes in the student version (tests nothing the student writes)")
        elif r == "solution" and err not in (None, "NotImplementedError"):
            problems.append(f"{nbgrader(c)['grade_id']}: the solution stub raises {err}")
        elif r is None and err is not None:
            first = source(c).strip().splitlines()[0] if source(c).strip() else ""
            problems.append(f"cell {i} ({first[:60]!r}), not an exercise, raises {err} in the student version")
    return report, problems


def format_report(name, report) -> str:
    return f"{name}: " + (", ".join(f"{gid} -> {err or 'ok'}" for gid, err in report.items()) or "no exercise cells")


# ---------------------------------------------------------------------------------------------
# the real notebooks

def test_every_instructor_notebook_has_a_student_version():
    assert INSTRUCTOR, "no notebooks/NN_*.ipynb found"
    assert [p.name for p in STUDENT_VERSIONS] == [p.name for p in INSTRUCTOR]


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_notebook_follows_the_course_conventions(path):
    problems = convention_problems(path)
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_instructor_exercise_cells_ran_without_error(path):
    """nbval re-runs the instructor versions in full; this reads what execute.py stored (instant)."""
    problems = stored_graded_output_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def test_student_versions_are_what_release_generates():
    _, differ = release.differences()
    assert not differ, f"notebooks/student differs from release.py's output for {differ}: run python notebooks/release.py"


@pytest.mark.parametrize("path", STUDENT_VERSIONS, ids=lambda p: p.name)
def test_negative_control(path):
    """Run notebooks/student/NN_*.ipynb where a student opens it (cwd notebooks/student)."""
    report, problems = negative_control(run_student(path))
    print(format_report(path.name, report))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------------------------
# the checks, on fixtures

def _meta(**kw):
    return {"nbgrader": {"schema_version": 3, **kw}}


def fixture_notebook(nn="99", exercises=3):
    """A small instructor notebook following every convention: `exercises` code exercises, the
    first with a written answer too. Outputs as notebooks/execute.py stores them."""
    cells = [new_markdown_cell(f"# {nn} · Fixture\n\nWhy this matters.\n\n**After this notebook you can**\n"
                               "- add two numbers\n- square a number\n- explain addition\n\n"
                               "**Prerequisites:** none.\n\n**Time:** about 5 min; runs in 1 s."),
             new_code_cell("import math\nbase = 2")]
    for k in range(1, exercises + 1):
        pts = 3 if k == 1 else 2
        cells += [
            new_markdown_cell(f"### Exercise {nn}.{k} ({pts} points): power {k}\n\nImplement `power{k}(x)`."),
            new_code_cell(f'def power{k}(x):\n    """x ** {k}."""\n    ### BEGIN SOLUTION\n    return x ** {k}\n'
                          "    ### END SOLUTION",
                          metadata=_meta(solution=True, grade=False, locked=False, grade_id=f"ex{nn}_{k}_solution")),
            new_code_cell(f"assert power{k}(2) == 2 ** {k}\n### BEGIN HIDDEN TESTS\nassert power{k}(3) == 3 ** {k}\n"
                          "### END HIDDEN TESTS",
                          metadata=_meta(solution=False, grade=True, locked=True, grade_id=f"ex{nn}_{k}_tests", points=2)),
        ]
        if k == 1:
            cells.append(new_markdown_cell("Why is x ** 1 = x?\n\n### BEGIN SOLUTION\nThe empty product.\n### END SOLUTION",
                                           metadata=_meta(solution=True, grade=True, locked=False,
                                                          grade_id=f"ex{nn}_1_answer", points=1)))
        cells.append(new_code_cell("math.sqrt(base)  # the narrative goes on"))
    cells.append(new_markdown_cell("## Summary\n\n- we added"))
    cells.append(new_markdown_cell("## References\n\n1. [Addition](https://en.wikipedia.org/wiki/Addition)"))
    n = 0
    for c in cells:
        if c["cell_type"] == "code":
            n += 1
            c["execution_count"] = n
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    return nb


def _problems(nb, nn="99"):
    return opening_problems(nb, nn) + summary_problems(nb) + exercise_problems(nb, nn) + stored_graded_output_problems(nb)


def test_the_fixture_follows_the_conventions():
    assert _problems(fixture_notebook()) == []
    assert _problems(fixture_notebook(exercises=5)) == []


def _cell(nb, gid):
    return next(c for c in nb["cells"] if nbgrader(c).get("grade_id") == gid)


def _break_title(nb):
    nb["cells"][0]["source"] = nb["cells"][0]["source"].replace("# 99 · Fixture", "# 9. Fixture")


def _break_opening(nb):
    nb["cells"][0]["source"] = nb["cells"][0]["source"].replace("**Time:**", "Time:")


def _break_outcomes(nb):
    nb["cells"][0]["source"] = nb["cells"][0]["source"].replace("- square a number\n- explain addition\n", "")


def _break_summary(nb):
    nb["cells"][-2]["source"] = "## What to take away\n\n- we added"


def _duplicate_id(nb):
    _cell(nb, "ex99_2_tests")["metadata"]["nbgrader"]["grade_id"] = "ex99_1_tests"


def _test_not_after_solution(nb):
    i = nb["cells"].index(_cell(nb, "ex99_2_solution"))
    nb["cells"].insert(i + 1, new_code_cell("y = 1"))


def _points_as_a_sum(nb):
    c = nb["cells"][[i for i, c in enumerate(nb["cells"]) if "### Exercise 99.1" in source(c)][0]]
    c["source"] = c["source"].replace("(3 points)", "(2 + 1 points)")


def test_a_heading_may_give_the_points_as_a_sum():
    nb = fixture_notebook()
    _points_as_a_sum(nb)
    assert _problems(nb) == []
    c = _cell(nb, "ex99_1_answer")
    c["metadata"]["nbgrader"]["points"] = 2
    assert _problems(nb) == ["Exercise 99.1: the heading says 3 points, its graded cells carry 4"]


def _points_mismatch(nb):
    _cell(nb, "ex99_3_tests")["metadata"]["nbgrader"]["points"] = 5


def _checked_output(nb):
    c = _cell(nb, "ex99_2_tests")
    c["source"] = "# NBVAL_CHECK_OUTPUT\n" + c["source"]


def _def_inside_markers(nb):
    c = _cell(nb, "ex99_2_solution")
    c["source"] = "### BEGIN SOLUTION\ndef power2(x):\n    return x ** 2\n### END SOLUTION"


def _drop_references(nb):
    nb["cells"].pop()


def _unlinked_reference(nb):
    nb["cells"][-1]["source"] = "## References\n\n1. Lee and Seung (1999), without a link"


def _stored_error(nb):
    _cell(nb, "ex99_1_tests")["outputs"] = [new_output("error", ename="AssertionError", evalue="", traceback=[])]


def _wrong_prefix(nb):
    _cell(nb, "ex99_3_tests")["metadata"]["nbgrader"]["grade_id"] = "ex98_3_tests"


@pytest.mark.parametrize("breaks, expect", [
    (_break_title, "does not start with '# 99 · Title'"),
    (_break_opening, "**Time:**"),
    (_break_outcomes, "1 bullets, not 3-6"),
    (_break_summary, "## Summary"),
    (_drop_references, "## References"),
    (_unlinked_reference, "Markdown link"),
    (_duplicate_id, "grade_id used twice"),
    (_test_not_after_solution, "ex99_2_solution: the next code cell"),
    (_points_mismatch, "Exercise 99.3: the heading says 2 points, its graded cells carry 5"),
    (_checked_output, "NBVAL_CHECK_OUTPUT"),
    (_def_inside_markers, "def line is not outside"),
    (_stored_error, "stored error ['AssertionError']"),
    (_wrong_prefix, "does not start with ex99_"),
], ids=lambda x: getattr(x, "__name__", "")[1:] if callable(x) else "")
def test_the_checks_find_a_broken_notebook(breaks, expect):
    nb = fixture_notebook()
    breaks(nb)
    problems = _problems(nb)
    assert any(expect in p for p in problems), problems


@pytest.mark.parametrize("n", [2, 6])
def test_the_checks_count_the_exercises(n):
    assert any(f"{n} exercises" in p for p in _problems(fixture_notebook(exercises=n)))


def test_a_notebook_without_exercises_fails_the_conventions():
    nb = fixture_notebook()
    nb["cells"] = [c for c in nb["cells"] if not role(c) and "### Exercise" not in source(c)]
    problems = _problems(nb)
    assert "0 exercises graded automatically (a graded test cell with points), not >= 3" in problems


# release.py on fixtures (one nbgrader run for all of them: each run creates a gradebook, seconds)

def _negative_fixture():
    """The fixture with two faults the negative control must see: a graded test that calls
    nothing of the student's, and narrative code that uses an exercise's function."""
    nb = fixture_notebook("97")
    _cell(nb, "ex97_3_tests")["source"] = "assert math.pi > 3  # calls nothing of the student's"
    nb["cells"].insert(-1, new_code_cell("power2(3)  # narrative that uses an exercise's function"))
    return nb


def _plain_fixture():
    return new_notebook(cells=[new_markdown_cell("# 98 · Plain"),
                               new_code_cell("1 + 1", execution_count=1,
                                             outputs=[new_output("execute_result", data={"text/plain": "2"},
                                                                 execution_count=1)])])


def _instructor_fixture():
    nb = fixture_notebook()
    nb["cells"][1]["outputs"] = [new_output("stream", name="stdout", text="stored output\n")]
    return nb


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(instructor folder, {name: instructor notebook}, {name: student bytes}) for three fixtures."""
    folder = tmp_path_factory.mktemp("instructor")
    nbs = {"99_fixture.ipynb": _instructor_fixture(), "98_plain.ipynb": _plain_fixture(),
           "97_negative.ipynb": _negative_fixture()}
    for name, nb in nbs.items():
        nbformat.write(nb, folder / name)
    return folder, nbs, release.generate(sorted(folder.glob("*.ipynb")))


def test_release_makes_the_student_version(released):
    _, nbs, out = released
    nb, data = nbs["99_fixture.ipynb"], out["99_fixture.ipynb"]
    student = nbformat.reads(data.decode(), as_version=4)
    assert [c["id"] for c in student.cells] == [c["id"] for c in nb.cells]
    assert [c["cell_type"] for c in student.cells] == [c["cell_type"] for c in nb.cells]
    for c in student.cells:
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None
    sol = _cell(student, "ex99_1_solution")
    assert sol.source == 'def power1(x):\n    """x ** 1."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    assert _cell(student, "ex99_1_tests").source == "assert power1(2) == 2 ** 1"  # hidden tests gone
    assert _cell(student, "ex99_1_answer").source == "Why is x ** 1 = x?\n\nYOUR ANSWER HERE"
    assert _cell(student, "ex99_1_tests").metadata["editable"] is False
    assert _cell(student, "ex99_1_solution").metadata["deletable"] is False
    for c in student.cells:  # ordinary cells unchanged
        if not role(c):
            assert c.source == next(d.source for d in nb.cells if d["id"] == c["id"])
            assert c.metadata == {}
    assert "BEGIN" not in data.decode() and "return x ** " not in data.decode()


def test_release_is_a_pure_function_of_the_notebook(released, tmp_path):
    """Again, in another folder, alone: the same bytes."""
    folder, _, out = released
    copy = tmp_path / "99_fixture.ipynb"
    copy.write_bytes((folder / "99_fixture.ipynb").read_bytes())
    assert release.generate([copy]) == {"99_fixture.ipynb": out["99_fixture.ipynb"]}


def test_release_copies_a_notebook_without_exercises(released):
    student = nbformat.reads(released[2]["98_plain.ipynb"].decode(), as_version=4)
    assert [c.source for c in student.cells] == ["# 98 · Plain", "1 + 1"]
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None


def test_release_check_finds_changed_missing_and_stale_files(released, tmp_path):
    out = released[2]
    assert release.compare(out, tmp_path) == sorted(out)
    for name, data in out.items():
        (tmp_path / name).write_bytes(data)
    assert release.compare(out, tmp_path) == []
    (tmp_path / "99_fixture.ipynb").write_bytes(out["99_fixture.ipynb"].replace(b"power1", b"power_one"))
    (tmp_path / "95_gone.ipynb").write_bytes(b"{}")
    (tmp_path / "98_plain.ipynb").unlink()
    assert release.compare(out, tmp_path) == ["95_gone.ipynb", "98_plain.ipynb", "99_fixture.ipynb"]


def test_the_negative_control_on_released_fixtures(released, tmp_path):
    out = released[2]
    for name in ("99_fixture.ipynb", "97_negative.ipynb"):
        (tmp_path / name).write_bytes(out[name])
    report, problems = negative_control(run_student(tmp_path / "99_fixture.ipynb"))
    assert problems == []
    assert report == {"ex99_1_solution": None, "ex99_1_tests": "NotImplementedError",
                      "ex99_2_solution": None, "ex99_2_tests": "NotImplementedError",
                      "ex99_3_solution": None, "ex99_3_tests": "NotImplementedError"}
    report, problems = negative_control(run_student(tmp_path / "97_negative.ipynb"))
    assert report["ex97_3_tests"] is None and report["ex97_2_tests"] == "NotImplementedError"
    assert problems[0] == "ex97_3_tests: passes in the student version (tests nothing the student writes)"
    assert "power2(3)" in problems[1] and problems[1].endswith("not an exercise, raises NotImplementedError in the student version")
    assert len(problems) == 2


if __name__ == "__main__":
    for p in [Path(a) for a in sys.argv[1:]] or STUDENT_VERSIONS:
        report, problems = negative_control(run_student(p.resolve()))
        print(format_report(p.name, report), flush=True)
        for pr in problems:
            print("  PROBLEM:", pr, flush=True)
