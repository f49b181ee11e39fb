"""Trainer configs: one dataclass per trainer, checked before any work, the same run on resume.

- The command line both trainers share: `config_parser` (`--config NAME`, `--set KEY=VALUE`,
  `--resume`, `--allow-change FIELD`, `--compile`), `config_from_args`, and `named_config` /
  `override` for Python.
- Config checks: `check_fields` with one rule per field (`integer`, `number`, `flag`, `one_of`,
  `text`, `sequence`, `device_name`); `check_resume`: a checkpoint resumes only the run that wrote it.

A config is a dataclass whose `validate()` (run at construction, after overrides and when a run
starts) checks every field with `check_fields`; a named config is a function returning one.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math

import torch


# ---------------------------------------------------------------------------
# Configs from Python and from the command line
# ---------------------------------------------------------------------------

def override(cfg, key: str, value):
    """Set a dotted key (e.g. "model.head.ham.grad") on nested dataclasses/dicts; returns cfg."""
    *path, last = key.split(".")
    obj = cfg
    for name in path:
        if isinstance(obj, dict) and name in obj:
            obj = obj[name]
        elif not isinstance(obj, dict) and hasattr(obj, name):
            obj = getattr(obj, name)
        else:
            raise ValueError(f"unknown config key {key!r}: {type(obj).__name__} has no field {name!r}")
    if isinstance(obj, dict):
        obj[last] = value                           # free-form keyword dicts, e.g. model.head.ham
    elif not hasattr(obj, last):
        raise ValueError(f"unknown config key {key!r}: {type(obj).__name__} has no field {last!r}")
    else:
        setattr(obj, last, value)
    return cfg


def named_config(configs: dict, name: str, **overrides):
    """configs[name]() with field overrides, e.g. named_config(CONFIGS, "quick", steps=200), then
    checked (`validate`, where the config has one)."""
    if name not in configs:
        raise ValueError(f"unknown config {name!r}; choose from {sorted(configs)}")
    cfg = configs[name]()
    for key, value in overrides.items():
        override(cfg, key, value)
    _validate(cfg)
    return cfg


def parse_override(text: str) -> tuple:
    """"KEY=VALUE" -> (KEY, VALUE): the value as a Python literal (ast.literal_eval), else the string."""
    if "=" not in text:
        raise ValueError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass                                        # a plain string: --set data_root=/data/voc
    return key.strip(), value


def config_parser(prog: str, doc: str, names) -> argparse.ArgumentParser:
    """The trainers' shared command line: --config NAME, --set KEY=VALUE ..., --resume,
    --allow-change FIELD ..., --compile."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="quick", choices=sorted(names))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (dotted for nested ones), e.g. steps=100; "
                        "the value is a Python literal or else a string")
    p.add_argument("--resume", action="store_true", help="continue from out_dir/last.pt if it exists")
    p.add_argument("--allow-change", action="append", default=[], metavar="FIELD",
                   help="with --resume: let FIELD (dotted for nested ones) differ from the checkpoint's config")
    p.add_argument("--compile", action="store_true", help="train through torch.compile")
    return p


def config_from_args(make, args: argparse.Namespace):
    """make() with the parsed --set overrides, --resume, --allow-change and --compile applied,
    then checked (`validate`, where the config has one)."""
    cfg = make()
    for text in args.set:
        override(cfg, *parse_override(text))
    if args.resume:
        cfg.resume = True
    if getattr(args, "allow_change", None):
        cfg.allow_change = (*cfg.allow_change, *args.allow_change)
    if args.compile:
        cfg.compile = True
    _validate(cfg)
    return cfg


def _validate(cfg) -> None:
    if hasattr(cfg, "validate"):
        cfg.validate()


# ---------------------------------------------------------------------------
# Config checks: one rule per field, (test, what is allowed)
# ---------------------------------------------------------------------------

def check_fields(cfg, rules: dict) -> None:
    """Raise a ValueError for the first field of `cfg` that breaks its rule, naming the field,
    its value and what is allowed. rules: field name -> (test, description), e.g. `integer(1)`."""
    for name, (ok, allowed) in rules.items():
        value = getattr(cfg, name)
        if not ok(value):
            raise ValueError(f"{type(cfg).__name__}.{name}={value!r} is not allowed: {name} must be {allowed}")


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _or_none(rule, optional):
    ok, allowed = rule
    return ((lambda v: v is None or ok(v)), f"{allowed} or None") if optional else rule


def integer(lo: int = 0, hi: int | None = None, optional: bool = False):
    """An int (not a bool, not a float) in [lo, hi]."""
    text = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
    return _or_none(((lambda v: _int(v) and v >= lo and (hi is None or v <= hi)), text), optional)


def number(lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """A finite int or float in the interval from lo to hi (open ends where asked)."""
    def ok(v):
        return _num(v) and (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if hi is None:
        return ok, f"a number {'>' if lo_open else '>='} {lo}"
    return ok, f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def flag():
    return (lambda v: isinstance(v, bool)), "True or False"


def one_of(choices, optional: bool = False):
    return _or_none(((lambda v: isinstance(v, str) and v in choices), f"one of {tuple(choices)}"), optional)


def text(optional: bool = False):
    """A non-empty string (a path, a split name)."""
    return _or_none(((lambda v: isinstance(v, str) and v != ""), "a non-empty string"), optional)


def sequence(rule, min_len: int = 1):
    """A tuple (or list) of at least min_len items, each following `rule`."""
    ok, allowed = rule
    return ((lambda v: isinstance(v, (tuple, list)) and len(v) >= min_len and all(ok(x) for x in v)),
            f"a tuple of {min_len} or more items, each {allowed}")


def device_name():
    """None (CUDA if present, else CPU) or a name torch.device reads; whether the device exists
    is `pick_device`'s check, made when a run starts."""
    def ok(v):
        if v is None:
            return True
        try:
            return isinstance(v, str) and torch.device(v) is not None
        except (RuntimeError, ValueError):
            return False
    return ok, "None or a device name such as 'cpu', 'cuda', 'cuda:1'"


def field_names(cfg, prefix: str = "") -> set:
    """Dotted names of a config's fields, nested dataclasses included ("model.head.channels")."""
    names = set()
    for f in dataclasses.fields(cfg):
        names.add(prefix + f.name)
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            names |= field_names(value, f"{prefix}{f.name}.")
    return names


# ---------------------------------------------------------------------------
# Resuming: the same run or an error
# ---------------------------------------------------------------------------

def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = tuple(v) if isinstance(v, list) else v
    return out


def check_resume(state: dict, cfg, path, free=()) -> None:
    """Refuse to resume `cfg` from checkpoint `state` (read from `path`) unless it is the same run:
    `cfg.steps` below the checkpoint's step, or any field whose value differs from the one in the
    checkpoint's config, is a ValueError naming them. Fields in `free` (bookkeeping such as
    stop_after) and in `cfg.allow_change` may differ; a name covers its sub-fields
    ("model.head" covers "model.head.ham.rank")."""
    if cfg.steps < state["step"]:
        raise ValueError(f"steps={cfg.steps} is below the step of {path} ({state['step']}): resume with "
                         f"steps >= {state['step']}, or start a new run (without --resume, or in another out_dir)")
    if not isinstance(state.get("config"), dict):
        raise ValueError(f"{path} holds no config to compare with: not a checkpoint of this trainer")
    old, new = _flat(state["config"]), _flat(dataclasses.asdict(cfg))
    allowed = ("allow_change", *free, *cfg.allow_change)
    changed = [k for k in sorted(old.keys() | new.keys())
               if old.get(k, "<absent>") != new.get(k, "<absent>")
               and not any(k == a or k.startswith(a + ".") for a in allowed)]
    if changed:
        diff = "; ".join(f"{k}: {old.get(k, '<absent>')!r} in the checkpoint, {new.get(k, '<absent>')!r} now"
                         for k in changed)
        raise ValueError(f"{path} is another run's checkpoint ({diff}). Resume with its settings, allow the "
                         f"change explicitly (--allow-change {changed[0]}, or allow_change=({changed[0]!r},)), "
                         "or start a new run (without --resume, or in another out_dir)")
