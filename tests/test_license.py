"""The LICENSE file and pyproject's license field name the same licence."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_matches_pyproject():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "MIT", f"pyproject declares {declared!r}; LICENSE holds the MIT text"
    assert text.splitlines()[0] == "MIT License", "LICENSE does not start with 'MIT License'"
    assert "Copyright (c) 2026 hamlib contributors" in text
    assert "Permission is hereby granted, free of charge" in text
