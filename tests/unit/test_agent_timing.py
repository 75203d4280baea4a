"""The agent's timing decisions (agent/timing.py), as a pure function of state and time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockwall.agent import timing
from dockwall.agent.events import Event
from dockwall.agent.timing import Burst, LoopState, Timing

T = Timing(debounce=0.005, max_delay=0.2, drift_interval=1.0)


def started(c: str) -> Event:
    return Event("container", "start", c)


def test_an_idle_loop_waits_in_stop_poll_slices_until_the_drift_check() -> None:
    state = timing.start(10.0, T)
    assert state == LoopState(None, 11.0)
    assert timing.wait_time(state, 10.0, T) == pytest.approx(T.stop_poll)
    assert timing.wait_time(state, 10.9, T) == pytest.approx(0.1)
    assert timing.wait_time(state, 12.0, T) == 0.0  # overdue: no negative timeout
    assert timing.step(state, 10.5, None, T) == timing.Step(state)
    due = timing.step(state, 11.0, None, T)
    assert due.drift and due.reconcile is None


def test_a_burst_ends_after_the_debounce_quiet_time() -> None:
    state = timing.start(0.0, T)
    first = timing.step(state, 0.100, started("a"), T)
    assert first.reconcile is None and not first.drift
    assert timing.wait_time(first.state, 0.100, T) == pytest.approx(T.debounce)
    second = timing.step(first.state, 0.103, started("b"), T)
    assert second.reconcile is None
    assert timing.wait_time(second.state, 0.103, T) == pytest.approx(T.debounce)
    early = timing.step(second.state, 0.104, None, T)  # a wake before the deadline
    assert early.reconcile is None and early.state == second.state
    done = timing.step(second.state, 0.108, None, T)
    assert done.reconcile == Burst(0.100, 0.103, frozenset({"a", "b"}))
    assert done.state.burst is None


def test_a_steady_stream_is_cut_at_the_burst_cap() -> None:
    """Events closer together than the debounce never starve the reconcile."""
    state = timing.start(0.0, T)
    now, reconciled = 0.5, []
    for i in range(200):
        decided = timing.step(state, now, started(f"c{i}"), T)
        state = decided.state
        if decided.reconcile is not None:
            reconciled.append((now, decided.reconcile))
        assert timing.wait_time(state, now, T) <= T.max_delay
        now += T.debounce / 2
    assert reconciled, "a steady stream was never reconciled"
    at, burst = reconciled[0]
    assert at == pytest.approx(0.5 + T.max_delay, abs=T.debounce)
    assert at - burst.first >= T.max_delay
    assert burst.containers >= {"c0", "c1"}
    # every burst of the stream is cut at the first event past the cap, none later
    assert len(reconciled) >= 2
    assert all(b.last - b.first <= T.max_delay + T.debounce / 2 + 1e-9 for _, b in reconciled)


def test_the_cap_counts_from_the_first_event_even_when_the_debounce_would_wait() -> None:
    slow = Timing(debounce=1.0, max_delay=0.2, drift_interval=5.0)
    state = timing.step(timing.start(0.0, slow), 1.0, started("a"), slow).state
    state = timing.step(state, 1.15, started("b"), slow).state
    assert timing.wait_time(state, 1.15, slow) == pytest.approx(0.05)


def test_network_events_mark_the_bridges_and_name_their_container() -> None:
    state = timing.start(0.0, T)
    created = timing.step(state, 0.1, Event("network", "create", None), T).state
    assert created.burst == Burst(0.1, 0.1, frozenset(), bridges=True)
    connected = timing.step(created, 0.101, Event("network", "connect", "x"), T).state
    assert connected.burst == Burst(0.1, 0.101, frozenset({"x"}), bridges=True)
    plain = timing.step(state, 0.1, Event("network", "connect", "y"), T).state
    assert plain.burst == Burst(0.1, 0.1, frozenset({"y"}), bridges=False)


def test_an_event_naming_nothing_starts_no_burst() -> None:
    state = timing.start(0.0, T)
    decided = timing.step(state, 0.3, Event("network", "disconnect", None), T)
    assert decided == timing.Step(state)


def test_a_drift_check_waits_for_the_burst_and_the_next_is_an_interval_after_it() -> None:
    state = timing.start(0.0, T)
    pending = timing.step(state, 0.999, started("a"), T).state
    held = timing.step(pending, 1.001, None, T)  # drift due, burst not yet
    assert held.reconcile is None and not held.drift
    both = timing.step(pending, 1.004, None, T)
    assert both.reconcile is not None and both.drift
    after = timing.drift_checked(both.state, 1.5, T)  # the check itself took 0.5 s
    assert after.next_drift == pytest.approx(2.5)


def test_interfaces_changed_at_a_drift_check_rereads_the_bridges_debounced() -> None:
    state = timing.bridges_changed(timing.start(0.0, T), 1.0)
    assert state.burst == Burst(1.0, 1.0, frozenset(), bridges=True)
    assert timing.step(state, 1.001, None, T).reconcile is None
    assert timing.step(state, 1.005, None, T).reconcile == state.burst


def test_backoff_doubles_up_to_the_limit() -> None:
    waits, backoff = [], timing.BACKOFF_START
    for _ in range(8):
        waits.append(backoff)
        backoff = timing.next_backoff(backoff, 5.0)
    assert waits == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])


def reconciled_by(state: LoopState, now: float, until: float) -> tuple[LoopState, float, set[str]]:
    """Lets the loop time out as it would until `until` (or until nothing waits)."""
    done: set[str] = set()
    while state.burst is not None and now + timing.wait_time(state, now, T) < until:
        now += timing.wait_time(state, now, T)
        decided = timing.step(state, now, None, T)
        state = decided.state
        done |= decided.reconcile.containers if decided.reconcile else set()
    return state, now, done


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=60))
def test_no_event_waits_longer_than_the_cap(gaps: list[float]) -> None:
    """Whatever the arrival times, every event is reconciled within max_delay of it."""
    state, now, arrived = timing.start(0.0, T), 0.0, {}

    def check(done: set[str]) -> None:
        for c in done:
            assert now - arrived.pop(c) <= T.max_delay + 1e-9

    for i, gap in enumerate(gaps):
        at = now + gap
        state, now, done = reconciled_by(state, now, at)
        check(done)  # at most one burst ends per wait, at `now`
        now = at
        arrived[f"c{i}"] = now
        decided = timing.step(state, now, started(f"c{i}"), T)
        state = decided.state
        check(decided.reconcile.containers if decided.reconcile else set())
    state, now, done = reconciled_by(state, now, float("inf"))
    check(done)
    assert not arrived and state.burst is None
