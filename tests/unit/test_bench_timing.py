"""The benchmark's interleaved timing: every path is timed in each round, in turn, so a slow spell on a shared
machine lands on all of them and the ratios between paths hold."""
import time

import pytest

from deepfake_detector.benchmarks.timing import summarize_ms, time_interleaved


def test_every_call_runs_once_per_round_in_turn_after_the_warmup():
    order = []
    samples = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, reps=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert {name: len(times) for name, times in samples.items()} == {"a": 3, "b": 3}


def test_a_slow_spell_slows_every_path_in_its_round_not_one_path():
    rounds = iter(range(1000))
    slow_round = {"index": None}

    def first() -> None:
        slow_round["index"] = next(rounds)
        time.sleep(0.02 if slow_round["index"] == 2 else 0.001)

    def second() -> None:
        time.sleep(0.02 if slow_round["index"] == 2 else 0.002)

    samples = time_interleaved({"first": first, "second": second}, reps=5)
    slowest = {name: max(range(5), key=times.__getitem__) for name, times in samples.items()}
    assert slowest == {"first": 2, "second": 2}
    ratio = summarize_ms(samples["second"])["p50_ms"] / summarize_ms(samples["first"])["p50_ms"]
    assert ratio == pytest.approx(2.0, rel=0.5)


def test_no_rounds_is_an_error():
    with pytest.raises(ValueError, match="at least 1"):
        time_interleaved({"a": lambda: None}, reps=0)
