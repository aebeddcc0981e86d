"""The run-wide stall watch: env steps that stop advancing are a stall, then a failure if recovery does not help."""

from asyncrl.runtime.heartbeat import Heartbeats
from asyncrl.runtime.stall import StallWatch, Verdict
from tests.test_heartbeat import FakeClock


def _watch(timeout=10.0):
    clock = FakeClock()
    return StallWatch(timeout, startup_factor=5.0, clock=clock), clock


def _stalled_after_5_steps():
    """A watch whose steps advanced to 5 at t=1 and stopped: at t=12 it asks for a recovery."""
    watch, clock = _watch()
    watch.observe(0)
    clock.now = 1.0
    watch.observe(5)
    clock.now = 12.0
    assert watch.observe(5) is Verdict.RECOVER
    return watch, clock


def test_steps_that_advance_are_never_a_stall():
    watch, clock = _watch()
    for step in range(100):
        clock.now += 9.0
        assert watch.observe(step) is Verdict.OK


def test_start_up_gets_the_longer_allowance_then_the_plain_timeout_applies():
    watch, clock = _watch()
    watch.observe(0)
    clock.now = 49.0
    assert watch.observe(0) is Verdict.OK  # engines and models still starting
    clock.now = 51.0
    assert watch.observe(0) is Verdict.RECOVER
    watch, clock = _watch()
    watch.observe(0)
    clock.now = 1.0
    watch.observe(5)
    clock.now = 11.5
    assert watch.observe(5) is Verdict.RECOVER


def test_a_stall_asks_for_one_recovery_and_fails_only_if_the_steps_stay_stopped():
    watch, clock = _stalled_after_5_steps()
    clock.now = 30.0
    assert watch.observe(5) is Verdict.OK  # recovered components get the start-up allowance
    clock.now = 62.5
    assert watch.observe(5) is Verdict.FAILED
    assert watch.recoveries == 1


def test_steps_after_a_recovery_end_the_stall():
    watch, clock = _stalled_after_5_steps()
    clock.now = 40.0
    assert watch.observe(6) is Verdict.OK
    clock.now = 100.0  # a new stall is judged afresh: recover first, not fail
    assert watch.observe(6) is Verdict.RECOVER


def test_a_component_its_own_heartbeat_is_judging_defers_the_stall_but_never_the_failure():
    watch, clock = _watch()
    beats = Heartbeats(10.0, clock=clock)
    watch.observe(0)
    clock.now = 1.0
    watch.observe(5)
    clock.now = 8.0
    beats.busy("inference")  # a ping sent 4 s before the stall would be declared
    clock.now = 12.0
    assert beats.judging() and watch.observe(5, defer=beats.judging()) is Verdict.OK
    clock.now = 18.5
    assert not beats.judging() and watch.observe(5, defer=beats.judging()) is Verdict.RECOVER
    clock.now = 70.0
    assert watch.observe(5, defer=True) is Verdict.FAILED


def test_a_handled_hang_restarts_the_stall_clock():
    watch, clock = _watch()
    watch.observe(0)
    clock.now = 1.0
    watch.observe(5)
    clock.now = 10.0
    watch.handled()
    clock.now = 15.0
    assert watch.observe(5) is Verdict.OK
    clock.now = 20.5
    assert watch.observe(5) is Verdict.RECOVER


def test_a_zero_timeout_turns_the_watch_off():
    watch, clock = _watch(timeout=0.0)
    watch.observe(0)
    clock.now = 1e6
    assert watch.observe(0) is Verdict.OK


def test_the_failure_says_how_long_ago_the_recovery_was():
    watch, clock = _stalled_after_5_steps()
    assert watch.since_recovery_s() == 0.0
    clock.now = 62.5
    assert watch.observe(5) is Verdict.FAILED and watch.since_recovery_s() == 50.5
