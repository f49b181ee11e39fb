"""The trainers' eager-vs-compiled step comparison (`python -m hamlib.experiments.trainer_compile`)."""

import math

import pytest

from experiments import trainer_compile


@pytest.mark.parametrize("kind", ["seg", "gan"])
def test_compare_times_both_steps_and_reports_their_ratio(kind, one_thread):
    # aot_eager: the same graph capture as inductor, without its minutes of C++ code generation
    r = trainer_compile.compare(kind, rounds=2, warmup=0, backend="aot_eager")
    assert r["compile_s"] > 0 and r["eager_ms"] > 0 and r["compiled_ms"] > 0
    assert math.isfinite(r["speedup"]) and r["speedup"] == pytest.approx(r["eager_ms"] / r["compiled_ms"])


def test_compare_names_a_bad_kind():
    with pytest.raises(ValueError, match="kind"):
        trainer_compile.compare("vit")
