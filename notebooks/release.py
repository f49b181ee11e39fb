"""Write the student versions of the notebooks, with nbgrader's own code.

    python notebooks/release.py           # (re)write notebooks/student/NN_*.ipynb from notebooks/NN_*.ipynb
    python notebooks/release.py --check   # exit 1, listing the student files that differ (CI runs this check)

Every instructor notebook `notebooks/NN_*.ipynb` gets a student version `notebooks/student/NN_*.ipynb`,
made exactly as `nbgrader generate_assignment` makes it: this script runs nbgrader's converter
(`nbgrader.converters.GenerateAssignment` with its default preprocessors in their order:
IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions, ClearOutput, CheckCellMetadata,
ComputeChecksums, SaveCells, ClearHiddenTests, ClearMarkScheme, ComputeChecksums,
CheckCellMetadata) on a temporary course directory, with nbgrader's default settings (no
nbgrader_config.py or user configuration is read). So solutions become `# YOUR CODE HERE` /
`raise NotImplementedError()` (code) or `YOUR ANSWER HERE` (Markdown), hidden tests disappear,
outputs and execution counts are cleared, graded and solution cells are locked against deletion
and carry checksums. A notebook without nbgrader cells only loses its outputs.

The output depends on the instructor notebook alone (cell ids and checksums come from it; no
timestamps), so the committed student versions can be compared byte for byte with a fresh run.
A student notebook whose instructor notebook is gone counts as a difference (and is deleted).
"""

import argparse
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDENT = HERE / "student"
PATTERN = "[0-9][0-9]_*.ipynb"


def instructor_notebooks(folder: Path = HERE) -> list[Path]:
    return sorted(folder.glob(PATTERN))


def generate(paths) -> dict[str, bytes]:
    """{file name: student version's bytes} for instructor notebooks `paths`, made by
    nbgrader's GenerateAssignment in a throw-away course directory (one assignment holding
    all of them; its gradebook is discarded)."""
    import nbgrader.api
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    # A new gradebook asks the `alembic` command for the newest schema id (a subprocess, 1-6 s):
    # a constant of the installation, so ask once per process. It never reaches the notebooks.
    # (`alembic` sits beside this Python: found also when the environment is not activated.)
    if shutil.which("alembic") is None:
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.cache(nbgrader.api.get_alembic_version)

    paths = [Path(p) for p in paths]
    if not paths:
        return {}
    with tempfile.TemporaryDirectory() as root:
        source = Path(root, "source", "course")
        source.mkdir(parents=True)
        for p in paths:
            shutil.copyfile(p, source / p.name)
        c = Config()
        c.CourseDirectory.root = root
        c.CourseDirectory.course_id = "hamlib"
        c.CourseDirectory.assignment_id = "course"
        c.GenerateAssignment.force = True
        converter = GenerateAssignment(coursedir=CourseDirectory(config=c), config=c)
        converter.start()
        release = Path(root, "release", "course")
        return {p.name: (release / p.name).read_bytes() for p in paths}


def compare(wanted: dict[str, bytes], student: Path = STUDENT) -> list[str]:
    """Names of the student files that differ from `wanted` (generate's output), are missing,
    or have no instructor notebook."""
    present = {p.name for p in student.glob(PATTERN)}
    differ = [n for n, data in wanted.items() if n not in present or (student / n).read_bytes() != data]
    return sorted(differ + list(present - set(wanted)))


def differences(instructor=None, student: Path = STUDENT) -> tuple[dict[str, bytes], list[str]]:
    """(what release would write, names of the student files that differ from it)."""
    wanted = generate(instructor_notebooks() if instructor is None else instructor)
    return wanted, compare(wanted, student)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 listing the files that differ")
    a = ap.parse_args(argv)
    wanted, differ = differences()
    if a.check:
        for name in differ:
            print(f"notebooks/student/{name} differs from what release.py generates", file=sys.stderr)
        if differ:
            print("run: python notebooks/release.py", file=sys.stderr)
        return 1 if differ else 0
    STUDENT.mkdir(exist_ok=True)
    for name in differ:
        target = STUDENT / name
        if name in wanted:
            target.write_bytes(wanted[name])
            print(f"wrote notebooks/student/{name}")
        else:
            target.unlink()
            print(f"removed notebooks/student/{name} (no instructor notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
