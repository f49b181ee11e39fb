"""hamlib.measure: the memory meters, the interleaved timer and the table writer."""

import pytest
import torch

from hamlib import measure


def test_peak_memory_sees_allocations():
    def alloc():
        a = torch.empty(1 << 20, dtype=torch.float32)   # 4 MiB
        b = torch.empty(1 << 19, dtype=torch.float32)   # 2 MiB, both alive
        del a, b

    assert abs(measure.peak_memory(alloc) / 2**20 - 6) < 0.1


def test_peak_tensor_memory_counts_live_storages_exactly():
    def fn():
        a = torch.empty(1000)          # 4000 bytes
        b = torch.empty(2000)          # 8000 bytes: 12000 live
        del a
        c = torch.empty(500)           # a freed first: 10000 live
        return b, c

    assert measure.peak_tensor_memory(fn) == 12000
    assert measure.peak_tensor_memory(fn) == 12000  # the same on every run


def test_peak_tensor_memory_ignores_preexisting_storage_and_views():
    x = torch.zeros(1000)

    def fn():
        x.mul_(2)            # in place on an input: nothing new
        x.view(10, 100).t()  # views: nothing new
        return x + 1         # one new storage of 4000 bytes

    assert measure.peak_tensor_memory(fn) == 4000


def test_interleaved_times_calls_each_in_turn():
    calls = []
    times = measure.interleaved_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                      rounds=3, warmup=1)
    assert calls == ["a", "b"] * 4 and set(times) == {"a", "b"}
    assert all(len(t) == 3 and min(t) >= 0 for t in times.values())
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        measure.interleaved_times({}, rounds=0)


def test_markdown_table():
    assert measure.markdown_table(["a", "b"], [[1, "x"], [2.5, ""]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 |  |"
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        measure.markdown_table(["a", "b"], [[1]])
