"""Where components' time goes: the stopwatch and the run-level breakdown."""

import time

import pytest

from asyncrl.timing import Stopwatch, TimeBreakdown


def test_stopwatch_adds_up_blocks_and_resets_on_take():
    watch = Stopwatch()
    with watch("env"):
        time.sleep(0.02)
    with watch("env"):
        pass
    watch.add("idle", 1.5)
    taken = watch.take()
    assert taken["env"] >= 0.02 and taken["idle"] == 1.5
    assert watch.take() == {}


def test_a_block_that_raises_is_still_counted():
    watch = Stopwatch()
    with pytest.raises(ValueError), watch("env"):
        raise ValueError("engine died")
    assert "env" in watch.take()


def test_breakdown_fractions_metrics_and_line():
    times = TimeBreakdown()
    times.add("samplers", {"env": 3.0, "inference": 1.0})
    times.add("samplers", {"env": 1.0, "idle": 0.0})
    times.add("learner", {"train": 9.0, "wait": 1.0})
    fractions = times.fractions()
    assert fractions["samplers"] == {"env": 0.8, "inference": 0.2, "idle": 0.0}
    assert list(fractions["samplers"]) == ["env", "inference", "idle"]  # largest share first
    assert times.metrics()["perf/learner_wait_frac"] == pytest.approx(0.1)
    assert times.line() == "samplers: env 80%, inference 20%, idle 0% | learner: train 90%, wait 10%"
