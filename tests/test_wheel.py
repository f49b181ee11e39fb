"""The built wheel, installed outside the repository, runs a course notebook.

`pip wheel --no-deps .` builds hamburger-hamlib; it is installed (no editable install) into a fresh
virtual environment whose site-packages come first, and which sees this environment's third-party
packages (torch, numpy, ipykernel, ...) only through a plain path line: the editable install's
.pth finder there is never run. Notebook 03 and its helpers (notebooks/course) are copied to a
temporary folder and executed by a kernel of the fresh environment; a last cell records where
hamlib was imported from and the kernel's sys.path, and the test asserts neither leads into the
repository.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
DIST = "hamburger-hamlib"
NOTEBOOK = "03_vq_cd.ipynb"  # a fast one (~15 s on a CPU) that needs no checkpoints

PROBE = """import json, sys, importlib.metadata as md, hamlib
dist = md.distribution("hamburger-hamlib")
print(json.dumps({"file": hamlib.__file__, "executable": sys.executable, "path": sys.path,
                  "version": dist.version, "direct_url": dist.read_text("direct_url.json")}))"""


def run(cmd, **kw):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def test_wheel_installs_in_a_fresh_venv_and_a_notebook_runs_from_it(tmp_path):
    # 1. the wheel: only the library, under the distribution's own name
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", ROOT])
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith("hamburger_hamlib-"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "hamlib/__init__.py" in names and not any(n.startswith(("notebooks/", "experiments/", "tests/")) for n in names)

    # 2. a fresh venv, the wheel installed into its site-packages; third-party packages reached by a path line
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    fresh_site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (fresh_site / "outer.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", fresh_site, wheel])

    # 3. the notebook and its helpers, outside the repository, run by a kernel of the fresh venv
    work = tmp_path / "course_run"
    work.mkdir()
    shutil.copytree(ROOT / "notebooks" / "course", work / "course", ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    nbformat.write(nb, work / NOTEBOOK)
    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(
        {"argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "fresh", "language": "python"}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(JUPYTER_PATH=str(tmp_path / "jupyter"), HAMLIB_FULL="0", OMP_NUM_THREADS="1", TQDM_DISABLE="1",
               MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    execute = ("import nbformat, nbclient, sys; nb = nbformat.read(sys.argv[1], as_version=4); "
               "nbclient.NotebookClient(nb, timeout=600, kernel_name='fresh', resources={'metadata': {'path': sys.argv[2]}}).execute(); "
               "nbformat.write(nb, sys.argv[1])")
    run([py, "-c", execute, work / NOTEBOOK, work], cwd=work, env=env)

    out = nbformat.read(work / NOTEBOOK, as_version=4).cells[-1].outputs
    seen = json.loads(out[0]["text"])
    assert Path(seen["file"]).is_relative_to(fresh_site), seen["file"]
    assert Path(seen["executable"]).parent == venv / "bin"
    assert seen["version"] == run([sys.executable, "-c", "import hamlib; print(hamlib.__version__)"]).stdout.strip()
    assert seen["direct_url"] is None or '"editable": true' not in seen["direct_url"]
    # this environment's site-packages (in the clone's .venv) is on the path for torch & co; it holds no
    # hamlib package of its own, only the editable install's finder, which a path line does not run
    outer = [Path(p) for p in site.getsitepackages()]
    assert not any((p / "hamlib").exists() for p in outer)
    into_repo = [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(ROOT)
                 and not any(Path(p).resolve() == o.resolve() for o in outer)]
    assert not into_repo, f"the kernel's sys.path leads into the repository: {into_repo}"
    errors = [o for c in nbformat.read(work / NOTEBOOK, as_version=4).cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, errors[:1]
