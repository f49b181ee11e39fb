"""Write a student-only release of the course: the student notebooks, no solutions, no hidden tests.

    python notebooks/student_release.py OUT          # write the folder OUT (new or empty)
    python notebooks/student_release.py OUT --git    # also `git init` OUT and commit it once,
                                                     # ready to push as the students' repository

OUT receives:

    README.md               how to install and open the course (no solutions)
    LICENSE, pyproject.toml this repository's (pyproject without the test/site extras and pytest
                            options, which name folders the release does not have)
    hamlib/                 the library
    notebooks/NN_*.ipynb    the student versions (notebooks/student/NN_*.ipynb)
    notebooks/course/       the course helpers the notebooks import (a real copy: notebooks/student/course
                            is a symlink)
    data/checkpoints/, data/mixers/   the checkpoints and results the notebooks load
    .gitignore

and nothing else: no instructor notebook, tests/, experiments/, notebooks/grading/ or release
scripts. The command refuses a non-empty OUT; it first checks that the committed student
versions are what notebooks/release.py makes from the instructor notebooks now (a stale student
version fails the command: run `python notebooks/release.py`), and after writing it checks the
release: no file holds nbgrader's solution or hidden-test markers, and no student notebook holds a
line of an instructor notebook's solution or hidden-test regions (lines of 20 characters or more
that the instructor notebook does not also show outside those regions).
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STUDENT = HERE / "student"

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")
REGION = re.compile(r"^[ \t]*#*[ \t]*BEGIN (SOLUTION|HIDDEN TESTS|MARK SCHEME)[^\n]*\n(.*?)^[ \t]*#*[ \t]*END \1",
                    re.M | re.S)
MIN_SECRET = 20      # characters: shorter region lines (`return out`) are not evidence of a leak
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".DS_Store")

README = """\
# Hamburger: the course notebooks

A course of Jupyter notebooks on **Hamburger** (Geng et al., ICLR 2021, *Is Attention Better Than
Matrix Decomposition?*): matrix decompositions (NMF, vector quantisation, concept decomposition)
run inside a network's forward pass as a global-context block, in PyTorch. The notebooks derive
the method, build it from the small `hamlib` library included here, and end with exercises.

## Install and open

```bash
python3 -m venv .venv && . .venv/bin/activate
pip install torch==2.13.0            # or the PyTorch build for your machine (https://pytorch.org)
pip install -e ".[notebooks]"        # hamlib, JupyterLab and what the notebooks use
jupyter lab notebooks/
```

Open `notebooks/01_low_rank.ipynb` first and go on in order; each notebook's first cell says what
you will be able to do after it, what it assumes and how long it takes. Run a notebook top to
bottom (*Run → Run All Cells* works: cells after an exercise never need your answer). On a machine
with a GPU the notebooks switch to larger settings; `HAMLIB_FULL=0 jupyter lab notebooks/` keeps
the quick ones.

## The exercises

- A code exercise is a cell with `# YOUR CODE HERE` and `raise NotImplementedError()`: replace both
  with your code, keeping the function's name and arguments.
- The locked cell after it holds **visible tests**: run it to check your work. When your work is
  graded, more tests run, so passing the visible ones is a good sign, not full marks.
- A written answer goes where a cell says `YOUR ANSWER HERE`.
- Do not delete, copy or reorder the exercise cells: they carry the ids the grading uses.
- If your teacher hands out and collects the exercises with nbgrader
  (`nbgrader fetch_assignment` / `nbgrader submit` / `nbgrader fetch_feedback`, or the Assignments
  tab of JupyterLab), follow their instructions; nbgrader comes with the `[notebooks]` extra.

## What is here

- `notebooks/NN_*.ipynb`: the notebooks; `notebooks/course/`: the helpers they import as `course`.
- `hamlib/`: the library (`import hamlib`).
- `data/checkpoints/`, `data/mixers/`: trained models and results the notebooks load.

Where a notebook mentions `experiments/` or `tests/`, it means the full hamlib repository, which
this release does not include. License: MIT (`LICENSE`).
"""

GITIGNORE = ".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\nbuild/\ndist/\n"


class ReleaseError(Exception):
    """The release cannot be made (the message says why)."""


def _release_module():
    spec = importlib.util.spec_from_file_location("hamlib_release", HERE / "release.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def student_pyproject(text: str) -> str:
    """pyproject.toml for the release: the `[tool.pytest.ini_options]` table and the `test` and
    `site` extras removed (they name tests/ and experiments/, not in the release), the rest as is."""
    out, table, skip = [], None, False
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        header = re.match(r"^\[([^\]]+)\]\s*$", line)
        if header:
            table = header.group(1).strip()
            skip = table == "tool.pytest.ini_options"
        if skip:
            i += 1
            continue
        key = re.match(r"^(\w[\w-]*)\s*=\s*\[", line) if table == "project.optional-dependencies" else None
        if key and key.group(1) in ("test", "site"):
            while out and out[-1].lstrip().startswith("#"):   # the comment lines that describe the extra
                out.pop()
            while not lines[i].split("#")[0].rstrip().endswith("]"):   # to the line closing the list
                i += 1
            i += 1
            continue
        out.append(line)
        i += 1
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).rstrip("\n") + "\n"
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: no parser in the standard library
        return result
    data = tomllib.loads(result)
    extras = data.get("project", {}).get("optional-dependencies", {})
    if "test" in extras or "site" in extras or "pytest" in data.get("tool", {}):
        raise ReleaseError("could not remove the test/site extras or the pytest options from pyproject.toml")
    if data["project"]["name"] != tomllib.loads(text)["project"]["name"] or "notebooks" not in extras:
        raise ReleaseError("pyproject.toml for the release lost the project name or the notebooks extra")
    return result


def secret_lines(source: str) -> set[str]:
    """The stripped lines (>= MIN_SECRET characters) inside a notebook cell source's solution,
    hidden-test and mark-scheme regions."""
    return {line.strip() for m in REGION.finditer(source) for line in m.group(2).split("\n")
            if len(line.strip()) >= MIN_SECRET and not any(k in line for k in MARKERS)}


def notebook_secrets(nb: dict) -> set[str]:
    """An instructor notebook's region lines that it does not also show outside its regions."""
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]]
    inside = set().union(*(secret_lines(s) for s in sources)) if sources else set()
    outside = {line.strip() for s in sources for line in REGION.sub("", s).split("\n")}
    return inside - outside


def leaks(out: Path, instructor: list[Path]) -> list[str]:
    """Problems of a written release: files with nbgrader markers; student notebooks quoting
    region lines of their instructor notebook."""
    problems = []
    for f in sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts):
        data = f.read_bytes()
        found = [k for k in MARKERS if k.encode() in data]
        if found:
            problems.append(f"{f.relative_to(out)} contains {found}")
    for path in instructor:
        student = out / "notebooks" / path.name
        if not student.exists():
            problems.append(f"notebooks/{path.name} is missing from the release")
            continue
        nb = json.loads(student.read_text())
        text = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"])
        quoted = sorted(s for s in notebook_secrets(json.loads(path.read_text())) if s in text)
        if quoted:
            problems.append(f"notebooks/{path.name} quotes {len(quoted)} solution/hidden-test lines, e.g. {quoted[0]!r}")
    return problems


def build(out: Path, git: bool = False) -> list[Path]:
    """Write the release into `out` (must not exist or be empty); returns the files written."""
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} exists and is not an empty folder: give a new or empty folder")
    if out == ROOT or ROOT in out.parents and out.relative_to(ROOT).parts[0] in ("notebooks", "hamlib", "data"):
        raise ReleaseError(f"{out} is inside this repository's notebooks/, hamlib/ or data/: choose another folder")
    release = _release_module()
    instructor = release.instructor_notebooks()
    if not instructor:
        raise ReleaseError(f"no instructor notebooks {release.PATTERN} in {HERE}")
    _, stale = release.differences()
    if stale:
        raise ReleaseError("the student versions are not what notebooks/release.py makes from the instructor "
                           f"notebooks now ({', '.join(stale)}): run python notebooks/release.py, then commit")

    out.mkdir(parents=True, exist_ok=True)
    (out / "notebooks").mkdir()
    for p in instructor:
        shutil.copyfile(STUDENT / p.name, out / "notebooks" / p.name)
    shutil.copytree(HERE / "course", out / "notebooks" / "course", ignore=IGNORE)
    shutil.copytree(ROOT / "hamlib", out / "hamlib", ignore=IGNORE)
    for sub in ("checkpoints", "mixers"):
        shutil.copytree(ROOT / "data" / sub, out / "data" / sub, ignore=IGNORE)
    shutil.copyfile(ROOT / "LICENSE", out / "LICENSE")
    (out / "pyproject.toml").write_text(student_pyproject((ROOT / "pyproject.toml").read_text()))
    (out / "README.md").write_text(README)
    (out / ".gitignore").write_text(GITIGNORE)

    problems = leaks(out, instructor)
    if problems:
        raise ReleaseError("the release in " + str(out) + " leaks solutions (delete it):\n  " + "\n  ".join(problems))
    if git:
        _git_commit(out)
    return sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts)


def _git_commit(out: Path):
    env = dict(os.environ, GIT_AUTHOR_NAME="hamlib course", GIT_AUTHOR_EMAIL="course@localhost",
               GIT_COMMITTER_NAME="hamlib course", GIT_COMMITTER_EMAIL="course@localhost")
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"],
                ["commit", "-q", "-m", "The course's student release: notebooks with exercises, helpers, hamlib, data"]):
        res = subprocess.run(["git", "-C", str(out), *cmd], env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise ReleaseError(f"git {' '.join(cmd)} in {out} failed: {res.stderr.strip()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the folder to write (new or empty)")
    ap.add_argument("--git", action="store_true", help="git init the folder and commit the release once")
    a = ap.parse_args(argv)
    try:
        files = build(a.out, git=a.git)
    except ReleaseError as e:
        print(f"student_release.py: {e}", file=sys.stderr)
        return 1
    notebooks = [f for f in files if f.parent == a.out.resolve() / "notebooks"]
    print(f"wrote {a.out}: {len(notebooks)} student notebooks, {len(files)} files" + (", one git commit" if a.git else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
