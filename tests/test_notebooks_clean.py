"""Every committed notebook is stored as CI will check it: a clean top-to-bottom run."""

import json
from pathlib import Path

import pytest

# the instructor versions only: notebooks/student/ (outputs cleared by design) is not globbed
NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: execution counts {counts} are not 1..n"
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: widget state stored in metadata"
    for c in code:
        src = "".join(c["source"])
        assert "sys.path" not in src and "!pip" not in src and "%pip" not in src, f"{path.name}: install/path hack"
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: stored error output"
            assert "image/svg+xml" not in out.get("data", {}), f"{path.name}: SVG figure (store PNG)"
    assert sum("NBVAL_CHECK_OUTPUT" in "".join(c["source"]) for c in code) >= 2, \
        f"{path.name}: fewer than two checked cells"
