"""The trainers' eager-vs-compiled step comparison (`python -m experiments.trainer_compile`)."""

import importlib
import math

import pytest

from experiments import trainer_compile


@pytest.mark.parametrize("kind", ["seg", "gan"])
def test_compare_times_the_trainers_own_step_and_reports_the_ratio(kind, one_thread, monkeypatch):
    trainer = importlib.import_module(f"hamlib.{kind}.train")
    calls, step = [], trainer.train_step
    monkeypatch.setattr(trainer, "train_step", lambda *a, **k: calls.append(a[0]) or step(*a, **k))
    # aot_eager: the same graph capture as inductor, without its minutes of C++ code generation
    r = trainer_compile.compare(kind, rounds=2, warmup=0, backend="aot_eager")
    assert r["compile_s"] > 0 and r["eager_ms"] > 0 and r["compiled_ms"] > 0
    assert math.isfinite(r["speedup"]) and r["speedup"] == pytest.approx(r["eager_ms"] / r["compiled_ms"])
    compiled = [net for net in calls if hasattr(net, "_orig_mod")]
    assert len(calls) == 5 and len(compiled) == 3      # the compile step, then each round: eager, compiled


def test_compare_names_a_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        trainer_compile.compare("vit")
