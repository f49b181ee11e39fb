"""The old `python -m hamlib.experiments.*` command lines: each says where it went (hamlib/_moved.py)."""
