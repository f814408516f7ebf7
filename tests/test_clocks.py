"""hub's clock follows the wall clock forward and never steps back with it."""

from __future__ import annotations

import logging
import threading

import pytest

from hub.clocks import SteadyClock


class Clocks:
    """A wall clock and a monotonic clock a test moves: ``tick`` moves both, as time
    passing does; ``step`` moves the wall clock alone, as ``date -s`` does."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.monotonic = 5_000.0

    def tick(self, seconds: float) -> None:
        self.wall += seconds
        self.monotonic += seconds

    def step(self, seconds: float) -> None:
        self.wall += seconds

    def clock(self) -> SteadyClock:
        return SteadyClock(lambda: self.wall, lambda: self.monotonic)


def test_it_reads_the_wall_clock_and_follows_it_forward():
    clocks = Clocks()
    clock = clocks.clock()
    assert clock() == clocks.wall
    clocks.tick(10)
    assert clock() == clocks.wall
    clocks.step(3600)  # an NTP correction forward: due times come at once, as they should
    assert clock() == clocks.wall


def test_a_step_back_slows_the_clock_until_the_wall_clock_catches_up(caplog):
    """Never back, never stopped: at nine tenths of real pace, the wall clock gains a
    tenth of a second every second, so a 60 s step is taken up in 600 s."""
    clocks = Clocks()
    clock = clocks.clock()
    start = clock()
    clocks.tick(5)
    clocks.step(-60)
    with caplog.at_level(logging.INFO, logger="hub.clock"):
        assert clock() == start + 5
        clocks.tick(100)
        assert clock() == pytest.approx(start + 95), "100 s later, 90 s on from the step"
        clocks.tick(499)
        assert clock() > clocks.wall, "not caught up yet"
        clocks.tick(2)
        assert clock() == clocks.wall == start + 5 - 60 + 601, "caught up: the wall's time"
        clocks.tick(1)
        assert clock() == clocks.wall, "and real pace again"
    said = [record.getMessage() for record in caplog.records]
    assert said == ["event=clock_stepped_back seconds=60.0", "event=clock_caught_up"]


def test_a_wall_clock_stepping_forward_while_caught_up_on_is_followed():
    clocks = Clocks()
    clock = clocks.clock()
    clocks.step(-3600)
    behind = clock()
    clocks.tick(10)
    clocks.step(7200)  # NTP puts it right: hub follows at once
    assert clock() == clocks.wall > behind + 3600


@pytest.mark.parametrize("jitter", [0.000001, 0.5])
def test_a_wall_clock_a_moment_behind_is_no_step_worth_a_log_line(caplog, jitter):
    clocks = Clocks()
    clock = clocks.clock()
    clocks.step(-jitter)
    with caplog.at_level(logging.INFO, logger="hub.clock"):
        assert clock() == pytest.approx(clocks.wall + jitter)
    assert caplog.records == []


def test_a_reading_in_a_read_thread_across_a_step_back_leaves_the_slowing_down_alone(caplog):
    """The store's read threads read the clock as the event loop does. One reading the
    wall clock just before a step back, and finishing after the loop's reading saw the
    step, must not undo the slowing down: the step is logged once, and no catching up
    that never happened."""
    clocks = Clocks()
    read_wall, loop_done = threading.Event(), threading.Event()
    loop = threading.current_thread()  # this test's thread stands for the event loop

    def wall() -> float:
        if threading.current_thread() is not loop:
            read_wall.set()
        return clocks.wall

    def monotonic() -> float:
        if threading.current_thread() is not loop:
            loop_done.wait(0.5)  # the loop's reading goes on meanwhile, unless it waits
        return clocks.monotonic

    clock = SteadyClock(wall, monotonic)
    start = clock()
    in_thread = threading.Thread(target=clock)
    with caplog.at_level(logging.INFO, logger="hub.clock"):
        in_thread.start()
        assert read_wall.wait(5)
        clocks.step(-3600)
        assert clock() == start
        loop_done.set()
        in_thread.join(5)
        clocks.tick(10)
        assert clock() == pytest.approx(start + 9), "still slowed down: 10 s later, 9 s on"
    said = [record.getMessage() for record in caplog.records]
    assert said == ["event=clock_stepped_back seconds=3600.0"]
