"""experiments/RESULTS.md: its generated tables equal a fresh generation from the manifest."""

import json
import shutil

import pytest

from experiments import results
from notebooks.course.checkpoints import default_root


def test_the_committed_results_page_is_fresh():
    text = results.PATH.read_text()
    assert text.count("<!-- generated:") == len(results.BLOCKS) == text.count("<!-- end:")
    assert results.generate(text) == text, "stale: run python -m experiments.results"


def test_generation_follows_the_manifest(tmp_path):
    root = tmp_path / "ckpt"
    shutil.copytree(default_root(), root, ignore=shutil.ignore_patterns("*.pt"))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["legend1/none_s0.pt"]["val"]["stored"]["miou"] = 0.123
    (root / "manifest.json").write_text(json.dumps(manifest))
    text = results.PATH.read_text()
    new = results.generate(text, root)
    assert new != text and "| none | 0.123 | 0.123 ± 0.000 |" in new
    outside = lambda t: results.BLOCK.sub("", t)   # noqa: E731
    assert outside(new) == outside(text)             # the recorded text is left as it is
    with pytest.raises(KeyError):
        results.generate("<!-- generated: nothing -->\n<!-- end: nothing -->", root)
