"""Do the graded exercises' tests reject wrong answers? (issue 24.1)

For every instructor notebook `notebooks/NN_*.ipynb` with graded code exercises, the file
`tests/exercises/answers_NN.py` holds plausible wrong answers:

    WRONG = {"exNN_k_solution": {"what the mistake is": "source replacing the solution cell", ...}}

This test executes the instructor notebook once, top to bottom, in a fresh kernel (cwd
`notebooks/`, CPU quick mode, one thread, progress bars off), as autograde would. At each code
solution cell it first runs every wrong answer in the solution's place, each followed by the
exercise's graded test cells (the `tests` cells after the solution, up to the next solution cell
or exercise heading):

- with the *visible* tests only (the hidden regions removed), as a student checks their work;
- then, if the visible tests did not catch it, with the whole cells, hidden tests included, as
  autograde runs them.

A wrong answer is *caught* by a layer when one of its test cells raises (or runs out of time).
Then the model solution runs and the notebook goes on, its test cells included: every other
cell must run cleanly. The test fails when an exercise has fewer than MIN_WRONG wrong answers,
when autograde's tests pass a wrong answer, when the visible tests pass the first one (the most
common mistake), when a wrong answer raises by itself (it would test nothing), or when a cell of
the model notebook fails.

    pytest tests/test_exercise_answers.py -k 02_      # one notebook
    python tests/test_exercise_answers.py [NN ...]    # the per-exercise report (tried / visible / all)
"""

import importlib.util
import os
import queue
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ANSWERS = Path(__file__).resolve().parent / "exercises"
MIN_WRONG = 5
CELL_TIMEOUT = 900     # s, a cell of the model notebook
TRIAL_TIMEOUT = 300    # s, a wrong answer or one of its test cells (a wrong answer may loop)

HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S)
HEADING = re.compile(r"^### Exercise \d\d\.\d+ ", re.M)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _role(cell) -> str | None:
    m = _nbgrader(cell)
    if cell["cell_type"] != "code":
        return None
    if m.get("solution"):
        return "graded-solution" if m.get("grade") else "solution"
    return "tests" if m.get("grade") else None


def visible(source: str) -> str:
    """A test cell as the student version shows it: the hidden regions removed."""
    return HIDDEN.sub("", source)


def exercises(nb) -> list[tuple[int, str, list[int]]]:
    """[(index of the code solution cell, its grade_id, indices of its graded test cells)]."""
    cells, out = nb["cells"], []
    for i, c in enumerate(cells):
        if _role(c) not in ("solution", "graded-solution"):
            continue
        tests = []
        for j in range(i + 1, len(cells)):
            d = cells[j]
            if _role(d) in ("solution", "graded-solution") or (d["cell_type"] == "markdown" and HEADING.search(d["source"])):
                break
            if _role(d) == "tests":
                tests.append(j)
        out.append((i, _nbgrader(c)["grade_id"], tests))
    return out


def load_wrong(nn: str) -> dict:
    path = ANSWERS / f"answers_{nn}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"answers_{nn}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WRONG


# ---------------------------------------------------------------------------------------------
# a kernel that runs code and says whether it raised

class Kernel:
    def __init__(self, cwd: Path):
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ, HAMLIB_FULL="0", TQDM_DISABLE="1", MPLBACKEND="Agg",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
        # the course's helpers are not installed: notebooks import them as `course` from notebooks/
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(NOTEBOOKS)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env, startup_timeout=120)

    def run(self, code: str, timeout: float) -> str | None:
        """None when `code` ran cleanly, else the exception's name ('Timeout' when it ran out of time)."""
        try:
            reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None,
                                                allow_stdin=False, store_history=False)
        except TimeoutError:
            self.km.interrupt_kernel()
            self._drain()
            return "Timeout"
        content = reply["content"]
        return content.get("ename", "error") if content["status"] != "ok" else None

    def _drain(self):
        # let the interrupted request finish, so its reply does not answer the next one
        try:
            self.kc.execute_interactive("pass", timeout=60, output_hook=lambda msg: None)
        except (TimeoutError, queue.Empty):  # pragma: no cover - a kernel that ignores interrupts
            pass

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


# ---------------------------------------------------------------------------------------------
# one notebook

@dataclass
class Trial:
    grade_id: str
    name: str
    visible: str | None = None     # what the visible tests raised (None: passed them)
    hidden: str | None = None      # what autograde's tests raised (None: passed them)
    itself: str | None = None      # what the wrong answer raised by itself

    @property
    def caught(self) -> bool:
        return self.visible is not None or self.hidden is not None


@dataclass
class Report:
    notebook: str
    trials: list[Trial] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def table(self) -> list[tuple[str, int, int, int]]:
        """[(grade_id, tried, caught by the visible tests, caught by autograde's tests)]."""
        rows = {}
        for t in self.trials:
            r = rows.setdefault(t.grade_id, [0, 0, 0])
            r[0] += 1
            r[1] += t.visible is not None
            r[2] += t.caught
        return [(g, *r) for g, r in rows.items()]


def check_notebook(path: Path, wrong: dict) -> Report:
    nb = nbformat.read(path, as_version=4)
    cells = nb["cells"]
    report = Report(path.name)
    found = {gid for _, gid, _ in exercises(nb)}
    for gid in sorted(set(wrong) - found):
        report.problems.append(f"{gid}: in answers_{path.name[:2]}.py but not a code solution cell of the notebook")
    trials_at = {}
    for i, gid, tests in exercises(nb):
        answers = wrong.get(gid, {})
        if len(answers) < MIN_WRONG:
            report.problems.append(f"{gid}: {len(answers)} wrong answers, at least {MIN_WRONG} wanted")
        trials_at[i] = (gid, answers, tests)

    kernel = Kernel(path.parent)
    try:
        for i, c in enumerate(cells):
            if c["cell_type"] != "code":
                continue
            if i in trials_at:
                gid, answers, tests = trials_at[i]
                for k, (name, src) in enumerate(answers.items()):
                    t = Trial(gid, name)
                    t.itself = kernel.run(src, TRIAL_TIMEOUT)
                    if t.itself is not None and _role(c) == "solution":
                        report.problems.append(f"{gid}: the wrong answer {name!r} raises {t.itself} by itself (it tests nothing)")
                    elif _role(c) == "graded-solution" and t.itself is not None:
                        t.visible = t.hidden = t.itself
                    else:
                        t.visible = _first_error(kernel, [visible(cells[j]["source"]) for j in tests])
                        if t.visible is None:
                            t.hidden = _first_error(kernel, [cells[j]["source"] for j in tests])
                        if not t.caught:
                            report.problems.append(f"{gid}: autograde's tests pass the wrong answer {name!r}")
                        elif k == 0 and t.visible is None:
                            report.problems.append(f"{gid}: the visible tests pass the first (most common) wrong answer {name!r}")
                    report.trials.append(t)
            err = kernel.run(c["source"], CELL_TIMEOUT)
            if err is not None:
                report.problems.append(f"cell {i} ({_nbgrader(c).get('grade_id', 'not graded')}) of the model notebook raises {err}")
                break
    finally:
        kernel.close()
    return report


def _first_error(kernel: Kernel, sources: list[str]) -> str | None:
    for s in sources:
        err = kernel.run(s, TRIAL_TIMEOUT)
        if err is not None:
            return err
    return None


def format_report(report: Report) -> str:
    lines = [f"{report.notebook}: grade_id, wrong answers tried, caught by the visible tests, caught by autograde's tests"]
    lines += [f"  {g}: {n} tried, {v} visible, {a} all" for g, n, v, a in report.table()]
    lines += [f"  PROBLEM {p}" for p in report.problems]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the tests

def graded_notebooks() -> list[Path]:
    out = []
    for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(p, as_version=4)
        if exercises(nb):
            out.append(p)
    return out


@pytest.mark.parametrize("path", graded_notebooks(), ids=lambda p: p.name)
def test_autograde_rejects_the_wrong_answers(path):
    report = check_notebook(path, load_wrong(path.name[:2]))
    print(format_report(report))
    assert not report.problems, format_report(report)


# the harness itself, on a fixture notebook (seconds)

def _fixture(tmp_path, tests_source, solution="def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    meta = lambda **kw: {"nbgrader": dict(schema_version=3, locked=False, points=0, **kw)}
    nb = new_notebook(cells=[
        new_code_cell("base = 1"),
        new_markdown_cell("### Exercise 99.1 (2 points): double"),
        new_code_cell(solution, metadata=meta(solution=True, grade=False, grade_id="ex99_1_solution")),
        new_code_cell(tests_source, metadata={"nbgrader": dict(schema_version=3, locked=True, points=2, solution=False,
                                                                 grade=True, grade_id="ex99_1_tests")}),
        new_code_cell("assert double(base) == 2  # the narrative goes on with the model solution"),
    ])
    path = tmp_path / "99_fixture.ipynb"
    nbformat.write(nb, path)
    return path


WRONG_FIXTURE = {"ex99_1_solution": {
    "adds instead of multiplies": "def double(x):\n    return x + 1",   # double(1) == 2: needs another case
    "returns the input": "def double(x):\n    return x",
    "squares": "def double(x):\n    return x * x",                     # double(2) == 4: needs another case
    "off by one": "def double(x):\n    return 2 * x + 1",
    "halves": "def double(x):\n    return x / 2",
}}


def test_the_harness_catches_and_passes(tmp_path):
    tests = "assert double(3) == 6\n### BEGIN HIDDEN TESTS\nassert double(2) == 4 and double(-1) == -2\n### END HIDDEN TESTS\n"
    report = check_notebook(_fixture(tmp_path, tests), WRONG_FIXTURE)
    assert not report.problems, report.problems
    assert report.table() == [("ex99_1_solution", 5, 5, 5)]


def test_the_harness_finds_weak_tests(tmp_path):
    # 2 -> 4 and 0 -> 0 both hold for x * x: neither layer catches "squares", put first here
    tests = "assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(0) == 0\n### END HIDDEN TESTS\n"
    answers = WRONG_FIXTURE["ex99_1_solution"]
    squares_first = {"ex99_1_solution": {"squares": answers["squares"], **answers}}
    report = check_notebook(_fixture(tmp_path, tests), squares_first)
    assert any("autograde's tests pass the wrong answer 'squares'" in p for p in report.problems), report.problems
    assert report.table() == [("ex99_1_solution", 5, 4, 4)]
    # the visible-layer rule alone: 1 -> 2 lets "adds" through, 2 -> 4 hidden catches it
    tests = "assert double(1) == 2\n### BEGIN HIDDEN TESTS\nassert double(2) == 4 and double(3) == 6\n### END HIDDEN TESTS\n"
    report = check_notebook(_fixture(tmp_path, tests), WRONG_FIXTURE)
    assert report.problems == ["ex99_1_solution: the visible tests pass the first (most common) wrong answer "
                               "'adds instead of multiplies'"], report.problems
    assert report.table() == [("ex99_1_solution", 5, 4, 5)]


def test_the_harness_wants_enough_answers_and_a_working_model(tmp_path):
    few = {"ex99_1_solution": dict(list(WRONG_FIXTURE["ex99_1_solution"].items())[:2]),
           "ex99_7_solution": {"x": "pass"}}
    broken = "def double(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION"
    report = check_notebook(_fixture(tmp_path, "assert double(3) == 6", solution=broken), few)
    text = "\n".join(report.problems)
    assert "ex99_1_solution: 2 wrong answers" in text
    assert "ex99_7_solution: in answers_99.py but not a code solution cell" in text
    assert "of the model notebook raises AssertionError" in text


def test_a_looping_wrong_answer_counts_as_caught(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "TRIAL_TIMEOUT", 3)
    loops = {"ex99_1_solution": {"loops": "def double(x):\n    while True:\n        pass"}}
    report = check_notebook(_fixture(tmp_path, "assert double(3) == 6"), loops)
    assert report.trials[0].visible == "Timeout" and report.trials[0].caught


def test_visible_removes_every_hidden_region():
    s = "a = 1\n### BEGIN HIDDEN TESTS\nassert 0\n### END HIDDEN TESTS\nb = 2\n    ### BEGIN HIDDEN TESTS\n    c\n    ### END HIDDEN TESTS\n"
    assert visible(s) == "a = 1\nb = 2\n"


if __name__ == "__main__":
    wanted = sys.argv[1:]
    for p in graded_notebooks():
        if not wanted or p.name[:2] in wanted:
            print(format_report(check_notebook(p, load_wrong(p.name[:2]))), flush=True)
