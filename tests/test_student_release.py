"""notebooks/student_release.py: the student-only release holds the student notebooks, helpers,
library and data, and no solution, hidden test or instructor file (issue 24.3).

One release is built (with --git) into a temporary folder for the module; the tests read it. The
slowest, executing notebook 01 from the release in a fresh kernel with the release's own course
helpers (~30 s), reuses the negative control of tests/test_exercises.py.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from tests.test_exercises import negative_control, nbgrader, role, source

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

_spec = importlib.util.spec_from_file_location("hamlib_student_release", NOTEBOOKS / "student_release.py")
sr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sr)

INSTRUCTOR = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def files(folder: Path, skip_git=True) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not (skip_git and ".git" in p.relative_to(folder).parts)}


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("release") / "students"
    assert sr.main([str(folder), "--git"]) == 0
    return folder


def test_the_release_holds_exactly_the_student_files(out):
    names = {p.name for p in INSTRUCTOR}
    assert names, "no instructor notebooks"
    assert sorted(p.name for p in out.iterdir()) == [".git", ".gitignore", "LICENSE", "README.md", "data",
                                                     "hamlib", "notebooks", "pyproject.toml"]
    assert {p.name for p in (out / "notebooks").iterdir()} == names | {"course"}
    assert sorted(p.name for p in (out / "data").iterdir()) == ["checkpoints", "mixers"]
    for name in names:  # the committed student versions, byte for byte; not the instructor's
        assert (out / "notebooks" / name).read_bytes() == (NOTEBOOKS / "student" / name).read_bytes()
        assert (out / "notebooks" / name).read_bytes() != (NOTEBOOKS / name).read_bytes()
    course = out / "notebooks" / "course"
    assert course.is_dir() and not course.is_symlink()
    assert files(course) == files(NOTEBOOKS / "course")
    assert files(out / "hamlib") == files(ROOT / "hamlib")
    for sub in ("checkpoints", "mixers"):
        assert files(out / "data" / sub) == files(ROOT / "data" / sub)
    everything = files(out)
    assert not [f for f in everything if f.startswith(("tests/", "experiments/", "notebooks/grading/", "notebooks/student/"))
                or f.endswith(("release.py", "nbgrader_config.py"))]
    assert (out / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()


def test_the_student_readme_says_how_to_install_and_open(out):
    text = (out / "README.md").read_text()
    assert 'pip install -e ".[notebooks]"' in text and "jupyter lab notebooks/" in text
    assert "notebooks/01_" in text and "SOLUTION" not in text


def _first_solution_lines() -> dict[str, str]:
    """{grade_id: the first line of its solution region} for every code exercise, skipping lines
    the instructor notebook also shows outside its regions and lines found in the library or the
    course helpers (`with torch.no_grad():`: not evidence of a leak)."""
    library = "\n".join(p.read_text() for d in ("hamlib", "notebooks/course") for p in (ROOT / d).rglob("*.py"))
    picked = {}
    for path in INSTRUCTOR:
        nb = nbformat.read(path, as_version=4)
        secrets = sr.notebook_secrets(nb)
        for c in nb.cells:
            if c.cell_type != "code" or role(c) not in ("solution", "graded-solution"):
                continue
            body = source(c).split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
            line = next((l.strip() for l in body.split("\n") if l.strip() in secrets and l.strip() not in library), None)
            if line:
                picked[nbgrader(c)["grade_id"]] = line
    return picked


def test_no_file_holds_markers_or_solution_lines(out):
    picked = _first_solution_lines()
    code_exercises = {nbgrader(c)["grade_id"] for p in INSTRUCTOR for c in nbformat.read(p, as_version=4).cells
                      if c.cell_type == "code" and role(c) in ("solution", "graded-solution")}
    assert len(picked) >= 0.9 * len(code_exercises) >= 20, (len(picked), len(code_exercises))
    for f in sorted(files(out)):
        data = (out / f).read_bytes()
        assert not [m for m in FORBIDDEN if m.encode() in data], f
        text = data.decode(errors="replace")
        if f.endswith(".ipynb"):  # the cell sources as the student sees them (JSON escapes quotes)
            text += "\n".join(source(c) for c in json.loads(text)["cells"])
        hits = [gid for gid, line in picked.items() if line in text]
        assert not hits, f"{f} holds the solution lines of {hits}"
    # the same search finds every picked line in the instructor notebooks
    instructor = "\n".join(source(c) for p in INSTRUCTOR for c in nbformat.read(p, as_version=4).cells)
    assert all(line in instructor for line in picked.values())


def test_the_leak_check_finds_an_instructor_notebook(tmp_path):
    (tmp_path / "notebooks").mkdir()
    path = INSTRUCTOR[0]
    shutil.copyfile(path, tmp_path / "notebooks" / path.name)
    problems = sr.leaks(tmp_path, [path])
    assert any("contains ['BEGIN SOLUTION'" in p for p in problems), problems
    assert any("quotes" in p and "solution/hidden-test lines" in p for p in problems), problems
    (tmp_path / "notebooks" / path.name).write_bytes((NOTEBOOKS / "student" / path.name).read_bytes())
    assert sr.leaks(tmp_path, [path]) == []


def test_the_git_repository_has_one_commit_of_everything(out):
    git = lambda *a: subprocess.run(["git", "-C", str(out), *a], capture_output=True, text=True, check=True).stdout
    assert len(git("log", "--format=%H").split()) == 1
    assert git("status", "--porcelain") == ""
    assert set(git("ls-files").split()) == files(out)


def test_a_non_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert sr.main([str(tmp_path)]) == 1
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(sr.ReleaseError, match="not an empty folder"):
        sr.build(tmp_path / "notes.txt")


def test_stale_student_versions_are_refused(tmp_path, monkeypatch):
    """A student version that differs from release.py's output stops the release before it writes."""
    release = sr._release_module()
    student = tmp_path / "student"
    shutil.copytree(NOTEBOOKS / "student", student, symlinks=True)
    name = INSTRUCTOR[-1].name
    (student / name).write_bytes((student / name).read_bytes().replace(b"YOUR CODE HERE", b"YOUR  CODE HERE"))
    differences = release.differences
    monkeypatch.setattr(release, "differences", lambda: differences(student=student))
    monkeypatch.setattr(sr, "_release_module", lambda: release)
    with pytest.raises(sr.ReleaseError, match=rf"not what notebooks/release.py makes .*{re.escape(name)}.*run python notebooks/release.py"):
        sr.build(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_pyproject_builds_a_wheel_of_hamlib(out, tmp_path):
    """pip builds the release (a copy: the build writes into the source folder)."""
    src = tmp_path / "src"
    shutil.copytree(out, src, ignore=shutil.ignore_patterns(".git"))
    tomllib = pytest.importorskip("tomllib")
    data, repo = (tomllib.loads(p.read_text()) for p in (src / "pyproject.toml", ROOT / "pyproject.toml"))
    assert "pytest" not in data.get("tool", {}) and "pytest" in repo["tool"]
    assert set(data["project"]["optional-dependencies"]) == set(repo["project"]["optional-dependencies"]) - {"test", "site"}
    assert {k: v for k, v in data["project"].items() if k != "optional-dependencies"} == \
        {k: v for k, v in repo["project"].items() if k != "optional-dependencies"}
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("hamburger_hamlib-*.whl")
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    assert "hamlib/__init__.py" in names and not any(n.startswith(("notebooks/", "data/")) for n in names)
    meta = z.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "Provides-Extra: notebooks" in meta and "Provides-Extra: test" not in meta
    assert "Install and open" in meta  # the student README is the long description


def test_notebook_01_runs_from_the_release_failing_only_in_its_exercises(out):
    """Executed in the release's notebooks/ folder with PYTHONPATH=OUT/notebooks only (hamlib from
    this environment): the release's course helpers are the ones imported, and the negative control
    of tests/test_exercises.py holds."""
    from nbclient import NotebookClient

    path = out / "notebooks" / "01_low_rank.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import course, json; print(json.dumps(course.__file__))"))
    env = dict(os.environ, HAMLIB_FULL="0", TQDM_DISABLE="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONPATH=str(out / "notebooks"))
    env.pop("HAMLIB_CHECKPOINTS", None)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(out / "notebooks")}}).execute(env=env)
    probe = nb.cells.pop()
    assert Path(json.loads(probe.outputs[0]["text"])).resolve() == (out / "notebooks" / "course" / "__init__.py").resolve()
    report, problems = negative_control(nb)
    assert not problems, problems
    graded = [gid for gid in report if gid.endswith("_tests")]
    assert len(graded) >= 3 and all(report[g] for g in graded), report
