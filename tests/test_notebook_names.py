"""Every hamlib and course name a notebook uses exists: imports, `alias.attr` chains, and the
backticked names its Markdown cells point at.

nbval finds a missing name only by running the notebook (minutes); this reads the cells with
`ast` and a regular expression (seconds), so a renamed or moved function shows up here with the
notebook's name. `course.X` is the notebooks' spelling of `notebooks.course.X` (their kernel runs
in notebooks/); it is resolved as such from the repository root. The check also fails when a cell
rebinds a name that stands for a module (e.g. `legend = ...` after `from course import legend`),
and when a notebook tells the reader to run a command-line module that only says where it went.
"""

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

from hamlib._moved import MOVED

# the instructor versions only: notebooks/student/ (outputs cleared by design) is not globbed
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


# the packages notebooks import from, and where each is found from the repository root
PACKAGES = {"hamlib": "hamlib", "course": "notebooks.course"}
# command-line modules that only print where they went: a notebook must name the new command
MOVED_CLIS = tuple(MOVED)  # old command lines that only say where they went


def _cells(path, kind):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def _tree(path):
    code = "\n".join(line for cell in _cells(path, "code") for line in cell.splitlines()
                     if not line.lstrip().startswith(("%", "!")))
    return ast.parse(code)


def _resolve(dotted):
    """The object a dotted hamlib or course path names (a module, or an attribute of one), or raise."""
    head, _, rest = dotted.partition(".")
    parts = (PACKAGES.get(head, head) + ("." + rest if rest else "")).split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ModuleNotFoundError(dotted)


def _chain(node):
    """'a.b.c' for an Attribute chain ending on a Name, else None."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    return ".".join([node.id] + names[::-1]) if isinstance(node, ast.Name) else None


def hamlib_names(tree):
    """(aliases {name: dotted hamlib/course path}, every dotted hamlib/course path the code uses)."""
    aliases, used = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                    used.add(a.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                used.add(f"{node.module}.{a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None), ast.Attribute):
            dotted = _chain(node)
            if dotted and dotted.split(".")[0] in aliases:
                head, _, rest = dotted.partition(".")
                used.add(f"{aliases[head]}.{rest}")
    return aliases, used


def _missing(dotted):
    try:
        _resolve(dotted)
        return False
    except (AttributeError, ModuleNotFoundError):
        # an attribute of an object that is not a module (e.g. a field of a returned dataclass) is not checked
        parent, _, _ = dotted.rpartition(".")
        try:
            return isinstance(_resolve(parent), type(importlib))
        except (AttributeError, ModuleNotFoundError):
            return _missing(parent) if parent.count(".") else True


def markdown_names(text, modules):
    """Dotted names in backticks in Markdown text that start with a package of PACKAGES or with one
    of `modules` {alias: dotted path} (the notebook's module aliases), as dotted paths."""
    found = set()
    for name in re.findall(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)", text):
        head, _, rest = name.partition(".")
        if head in PACKAGES:
            found.add(name)
        elif head in modules:
            found.add(f"{modules[head]}.{rest}")
    return found


def stale_commands(text):
    """The `python -m MODULE` commands in text whose module is hamlib's and is one of MOVED_CLIS or
    does not exist."""
    return sorted({m for m in re.findall(r"python -m ([\w.]+)", text)
                   if m.split(".")[0] == "hamlib" and (m in MOVED_CLIS or _missing(m))})


def _names(path):
    tree = _tree(path)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    aliases, used = hamlib_names(tree)
    modules = {a: d for a, d in aliases.items() if isinstance(_resolve(d), type(importlib))}
    return tree, aliases, used, modules


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_only_existing_hamlib_names(path):
    tree, aliases, used, modules = _names(path)
    assert aliases, f"{path.name} imports nothing from hamlib"
    missing = sorted(d for d in used if _missing(d))
    assert not missing, f"{path.name} uses hamlib/course names that do not exist: {missing}"
    rebound = sorted({t.id for t in ast.walk(tree) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)
                      and t.id in modules})
    assert not rebound, f"{path.name} rebinds names that stand for hamlib/course modules: {rebound}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_text_points_at_existing_names(path):
    _, _, _, modules = _names(path)
    text = "\n".join(_cells(path, "markdown"))
    missing = sorted(d for d in markdown_names(text, modules) if _missing(d))
    assert not missing, f"{path.name}: its Markdown names hamlib/course names that do not exist: {missing}"
    stale = stale_commands(text + "\n".join(_cells(path, "code")))
    assert not stale, f"{path.name} tells the reader to run {stale}, which moved or do not exist"


def test_the_checker_sees_a_missing_name():
    tree = ast.parse("import hamlib\nfrom course import lowrank as lr\nlr.truncated_svd\nlr.no_such_thing\n"
                     "hamlib.layers.count_params\nhamlib.layers.nope\nlr.truncated_svd.__doc__\n"
                     "from course.legend import verdict, no_verdict\nfrom hamlib.viz import lowrank")
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    aliases, used = hamlib_names(tree)
    assert aliases["lr"] == "course.lowrank" and aliases["verdict"] == "course.legend.verdict"
    assert sorted(d for d in used if _missing(d)) == ["course.legend.no_verdict", "course.lowrank.no_such_thing",
                                                       "hamlib.layers.nope", "hamlib.viz.lowrank"]


def test_the_checker_reads_markdown():
    text = ("`hamlib.nmf` and `course.lowrank.draw_rank` exist, `hamlib.viz.lowrank.draw_rank` and "
            "`lr.gone` do not; `cfg.steps` is no module's; run `python -m hamlib.bench`, `python -m hamlib.seg.train`, "
            "`python -m hamlib.experiments.checkpoints` or `python -m experiments.bench`")
    names = markdown_names(text, {"lr": "course.lowrank"})
    assert names == {"hamlib.nmf", "course.lowrank.draw_rank", "hamlib.viz.lowrank.draw_rank", "course.lowrank.gone"}
    assert sorted(d for d in names if _missing(d)) == ["course.lowrank.gone", "hamlib.viz.lowrank.draw_rank"]
    assert stale_commands(text) == ["hamlib.bench", "hamlib.experiments.checkpoints"]
