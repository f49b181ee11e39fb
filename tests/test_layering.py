"""Import direction: every module of hamlib/, notebooks/course/ and experiments/ imports only
modules of lower layers (or, where a layer allows it, modules of its own group).

The layers are data: a module not covered by one fails the test, so a new file has to be placed.
Imports are read with ast (lazy imports inside functions included), not by importing.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("hamlib", "notebooks/course", "experiments")

# (level, group, module prefixes, may the group's modules import each other, why)
LAYERS = [
    (0, "base", ("hamlib.runtime", "hamlib.config", "hamlib.measure", "hamlib.layers", "hamlib.minimal", "hamlib._moved"), False,
     "torch only: runtime helpers, measurements, building blocks, the one-screen block, the moved-CLI table"),
    (1, "stubs", ("hamlib.bench", "hamlib.seg.grad_table", "hamlib.experiments"), False,
     "old command lines: each imports hamlib._moved only, to say where it went"),
    (1, "grad", ("hamlib.grad",), False, "gradient plans: knows no solver (a solver is anything with step/coef)"),
    (2, "solvers", ("hamlib.solvers",), False, "the paper's updates, pure functions of tensors"),
    (3, "md", ("hamlib.md",), False, "the solver modules and functional API: solvers run by a gradient plan"),
    (4, "blocks", ("hamlib.attention", "hamlib.ham", "hamlib.mixers"), False,
     "residual blocks built from layers and md; token mixers and the small transformer on (B, N, C)"),
    (5, "over blocks", ("hamlib.context", "hamlib.analysis"), False,
     "the context factory over the blocks; measurements of md's solvers"),
    (6, "api", ("hamlib",), False, "the package's public names, re-exported (hamlib/__init__.py only)"),
    (7, "seg", ("hamlib.seg",), True, "segmentation on the library; never imports gan"),
    (7, "gan", ("hamlib.gan",), True, "GANs on the library; never imports seg"),
    (8, "course", ("notebooks.course",), True, "the notebooks' helpers: use hamlib, never experiments"),
    (9, "experiments", ("experiments",), True, "scripts: use hamlib and the course"),
]


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules():
    return {module_name(p): p for tree in TREES for p in sorted((ROOT / tree).rglob("*.py"))}


INIT_ONLY = {"hamlib"}  # prefixes that cover the package's __init__ and not its submodules


def covers(prefix, module):
    return module == prefix or (module.startswith(prefix + ".") and prefix not in INIT_ONLY)


def group_of(module):
    """The layer entry whose longest prefix covers `module`, or None."""
    best = None
    for entry in LAYERS:
        for prefix in entry[2]:
            if covers(prefix, module) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, entry)
    return None if best is None else best[1]


def imports(module, source, is_package, known):
    """The project modules `source` (the text of `module`) imports: relative imports resolved,
    `from pkg import name` read as the submodule pkg.name where one exists, `course.X` (the
    notebooks' spelling) as notebooks.course.X."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            names = [(base, a.name) for a in node.names]
        else:
            continue
        for base, name in names:
            if base == "course" or base.startswith("course."):
                base = "notebooks." + base
            target = f"{base}.{name}" if name and f"{base}.{name}" in known else base
            if target.split(".")[0] in ("hamlib", "notebooks", "experiments"):
                found.add(target)
    return found


def violations(modules):
    """'a imports b (why)' for every import against the layers; modules: {name: (source, is_package)}."""
    known = set(modules) | set(all_modules())
    out = []
    for module, (source, is_package) in sorted(modules.items()):
        src = group_of(module)
        if src is None:
            out.append(f"{module} belongs to no layer: place it in LAYERS")
            continue
        for target in sorted(imports(module, source, is_package, known)):
            dst = group_of(target)
            if dst is None:
                out.append(f"{module} imports {target}, which belongs to no layer")
            elif not (dst[0] < src[0] or (dst is src and src[3])):
                out.append(f"{module} (layer {src[0]} {src[1]}) imports {target} (layer {dst[0]} {dst[1]}): "
                           f"upward or sideways")
    return out


def test_every_module_imports_only_downward():
    modules = {m: (p.read_text(), p.name == "__init__.py") for m, p in all_modules().items()}
    assert violations(modules) == []


def test_every_layer_covers_a_module():
    modules = all_modules()
    for _, group, prefixes, _, _ in LAYERS:
        for prefix in prefixes:
            assert any(group_of(m)[1] == group for m in modules if covers(prefix, m)), prefix


@pytest.mark.parametrize("module,source", [
    ("hamlib.solvers", "from .md import nmf"),                       # a lower layer reaching up
    ("hamlib.md", "import experiments.bench"),                       # the library importing a script
    ("hamlib.seg.heads", "from ..gan.model import Generator"),       # seg and gan, sideways
    ("hamlib.grad", "def f():\n    from hamlib import md\n"),       # lazily, inside a function
    ("notebooks.course.legend", "from experiments import gradient_study"),
    ("hamlib.analysis", "from course.legend import head_spec"),     # the notebooks' spelling
])
def test_an_upward_import_is_reported(module, source):
    found = violations({module: (source, False)})
    assert len(found) == 1 and found[0].startswith(module) and "upward or sideways" in found[0]


@pytest.mark.parametrize("module", ["scratch", "hamlib.newthing"])
def test_a_module_outside_the_layers_is_reported(module):
    assert violations({module: ("import torch", False)}) == [f"{module} belongs to no layer: place it in LAYERS"]
