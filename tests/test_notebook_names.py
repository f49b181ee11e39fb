"""Every hamlib name a notebook uses exists: imports, and `alias.attr` chains on hamlib modules.

nbval finds a missing name only by running the notebook (minutes); this reads the code cells
with `ast` (seconds), so a renamed or moved function shows up here with the notebook's name.
It also fails when a cell rebinds a name that stands for a hamlib module (e.g. `legend = ...`
after `from hamlib.experiments import legend`).
"""

import ast
import importlib
import json
from pathlib import Path

import pytest

# the instructor versions only: notebooks/student/ (outputs cleared by design) is not globbed
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def _tree(path):
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    code = "\n".join(line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!")))
    return ast.parse(code)


def _resolve(dotted):
    """The object a dotted hamlib path names (a module, or an attribute of one), or raise."""
    parts = dotted.split(".")
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
    """(aliases {name: dotted hamlib path}, every dotted hamlib path the code uses)."""
    aliases, used = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "hamlib":
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else "hamlib"
                    used.add(a.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "hamlib":
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_only_existing_hamlib_names(path):
    tree = _tree(path)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    aliases, used = hamlib_names(tree)
    assert aliases, f"{path.name} imports nothing from hamlib"
    missing = sorted(d for d in used if _missing(d))
    assert not missing, f"{path.name} uses hamlib names that do not exist: {missing}"
    modules = {a for a, d in aliases.items() if isinstance(_resolve(d), type(importlib))}
    rebound = sorted({t.id for t in ast.walk(tree) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)
                      and t.id in modules})
    assert not rebound, f"{path.name} rebinds names that stand for hamlib modules: {rebound}"


def test_the_checker_sees_a_missing_name():
    tree = ast.parse("import hamlib\nfrom notebooks.course import lowrank as lr\nlr.truncated_svd\nlr.no_such_thing\n"
                     "hamlib.layers.count_params\nhamlib.layers.nope\nlr.truncated_svd.__doc__")
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    _, used = hamlib_names(tree)
    assert sorted(d for d in used if _missing(d)) == ["hamlib.layers.nope", "hamlib.viz.lowrank.no_such_thing"]
