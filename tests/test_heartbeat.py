"""Hang detection bookkeeping: busy components that stop delivering are named; idle ones never are."""

from asyncrl.runtime.heartbeat import Heartbeats


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _beats(timeout=10.0):
    clock = FakeClock()
    return Heartbeats(timeout, startup_factor=5.0, clock=clock), clock


def test_a_busy_component_is_hung_after_the_timeout_and_not_before():
    beats, clock = _beats()
    beats.busy("s0")
    beats.progress("s0", still_busy=True)  # started: the plain timeout applies from here
    clock.now = 10.0
    assert beats.hung() == []
    clock.now = 10.5
    assert beats.hung() == [("s0", 10.5)]


def test_start_up_gets_a_longer_allowance():
    beats, clock = _beats()
    beats.busy("s0")
    clock.now = 49.0
    assert beats.hung() == []
    clock.now = 51.0
    assert beats.hung() == [("s0", 51.0)]


def test_progress_restarts_the_clock_and_an_idle_component_is_never_hung():
    beats, clock = _beats()
    beats.busy("s0")
    beats.progress("s0", still_busy=True)
    clock.now = 8.0
    beats.progress("s0", still_busy=True)
    clock.now = 16.0
    assert beats.hung() == []
    beats.progress("s0", still_busy=False)  # nothing in flight: backpressure, not a hang
    clock.now = 1000.0
    assert beats.hung() == []
    beats.busy("s0")  # new work: the clock starts now, not at its last progress
    clock.now = 1009.0
    assert beats.hung() == []


def test_busy_does_not_restart_a_running_clock():
    beats, clock = _beats()
    beats.busy("l0")
    beats.progress("l0", still_busy=True)
    clock.now = 6.0
    beats.busy("l0")  # a second call queued behind the first
    clock.now = 11.0
    assert [name for name, _ in beats.hung()] == ["l0"]


def test_a_restarted_component_gets_the_start_up_allowance_again_and_zero_turns_it_off():
    beats, clock = _beats()
    beats.busy("i")
    beats.progress("i", still_busy=True)
    clock.now = 11.0
    assert beats.hung()
    beats.restarted("i")
    clock.now = 59.0
    assert beats.hung() == []
    off, clock = _beats(timeout=0.0)
    off.busy("s0")
    clock.now = 1e9
    assert off.hung() == []
