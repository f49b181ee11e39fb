"""What `nbgrader autograde` costs per notebook: the model solution graded as a submission.

    python notebooks/grading/autograde_cost.py [NN ...]     # default: every notebooks/NN_*.ipynb

For each instructor notebook, one after the other: a fresh nbgrader course folder in a temporary
directory with this repository's notebooks/nbgrader_config.py, the notebook as the assignment's
source, `nbgrader generate_assignment`, the instructor notebook itself copied in as the submission
of a student `model`, then `nbgrader autograde` timed (wall clock), with the settings the teacher's
page gives (HAMLIB_FULL=0, one thread: OMP_NUM_THREADS=MKL_NUM_THREADS=1, the course helpers and
notebooks/grading on PYTHONPATH, the shipped checkpoints; matplotlib's inline backend, so the
figures are drawn as in a teacher's run). Prints one line per notebook: seconds for
the autograde command (one submission; it includes nbgrader's start, ~2-4 s) and the auto score
against the auto-gradable maximum read from the gradebook (written answers are not auto-graded,
so they count neither).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def env() -> dict:
    e = dict(os.environ, HAMLIB_FULL="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1",
             HAMLIB_CHECKPOINTS=str(ROOT / "data" / "checkpoints"))
    e.pop("MPLBACKEND", None)   # the kernels' inline backend draws the figures, as in a teacher's run
    e["PYTHONPATH"] = os.pathsep.join([str(NOTEBOOKS)] + [p for p in e.get("PYTHONPATH", "").split(os.pathsep) if p])
    e["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), e.get("PATH", "")])
    return e


def nbgrader(course: Path, *args) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env(),
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def measure(path: Path, root: Path) -> tuple[float, float, float]:
    """(seconds of `nbgrader autograde`, auto score, auto maximum) for instructor notebook `path`."""
    from nbgrader.api import Gradebook

    name = path.stem
    course = root / name
    (course / "source" / name).mkdir(parents=True)
    shutil.copyfile(NOTEBOOKS / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copyfile(path, course / "source" / name / path.name)
    nbgrader(course, "generate_assignment", name, "--force")
    (course / "submitted" / "model" / name).mkdir(parents=True)
    shutil.copyfile(path, course / "submitted" / "model" / name / path.name)
    t0 = time.perf_counter()
    nbgrader(course, "autograde", name)
    seconds = time.perf_counter() - t0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(name, "model")
        nb = sub.notebooks[0]
        score = sum(g.score for g in nb.grades if g.auto_score is not None)
        maximum = sum(g.max_score for g in nb.grades if g.auto_score is not None)
    return seconds, score, maximum


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("numbers", nargs="*", help="notebook numbers (01 02 ...); default all")
    a = ap.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if a.numbers:
        paths = [p for p in paths if p.name[:2] in a.numbers]
        missing = set(a.numbers) - {p.name[:2] for p in paths}
        if missing:
            ap.error(f"no instructor notebook numbered {sorted(missing)}")
    with tempfile.TemporaryDirectory() as root:
        for p in paths:
            seconds, score, maximum = measure(p, Path(root))
            print(f"{p.name}: autograde {seconds:.1f} s, auto score {score:g}/{maximum:g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
