"""pip and conda users get the same environment; CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower()


def pip_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += [r for r in extra if _name(r) != meta["name"]]  # not the self-reference test = [NAME[...]]
    return {_name(r): r.replace(" ", "") for r in reqs}


def conda_packages():
    pkgs = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)(.*)$", line)  # top-level conda dependencies only
        if m and m.group(1) not in ("python", "pip"):
            name = CONDA_NAMES.get(m.group(1), m.group(1)).lower()
            pkgs[name] = name + m.group(2).replace(" ", "")
    return pkgs


def test_environment_yml_lists_the_same_packages_and_bounds_as_pyproject():
    pip, conda = pip_packages(), conda_packages()
    assert set(pip) == set(conda), f"only in pyproject: {set(pip) - set(conda)}; only in environment.yml: {set(conda) - set(pip)}"
    for name in pip:
        assert pip[name].lower() == conda[name].lower(), (pip[name], conda[name])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- test-command -->\s*```bash\n(.*?)```", readme, re.S)
    assert block, "README lacks the marked test-command block"
    ci = (ROOT / ".ci" / "run").read_text()
    for line in block.group(1).strip().splitlines():
        cmd = line.split("#")[0].strip()
        assert cmd in ci, f".ci/run does not run the README's `{cmd}`"


def test_readme_python_examples_run():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
