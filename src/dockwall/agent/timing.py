"""When the agent acts: the loop's timing decisions as a pure function of state and time.

The loop itself only waits, reads Docker and loads rules; everything about *when*
(debounce, the burst cap, the drift schedule, reconnect backoff) is decided here from
plain values, so it is tested with a fake clock and no Docker, no root and no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dockwall.agent.events import Event

STOP_POLL = 0.2  # seconds: a SIGTERM ends the agent within this (plus the work under way)
BACKOFF_START = 0.2  # seconds before the first reconnect attempt after Docker went away
BRIDGE_ACTIONS = frozenset({"create", "destroy"})  # network events that change the bridges


@dataclass(frozen=True)
class Timing:
    """`debounce`: quiet time that ends a burst; `max_delay`: a burst never waits longer
    than this after its first event (a steady stream of events must not starve it)."""

    debounce: float
    max_delay: float
    drift_interval: float
    stop_poll: float = STOP_POLL


@dataclass(frozen=True)
class Burst:
    """Events not reconciled yet: which containers to read again, whether the networks
    changed, and when the burst's first and last events came."""

    first: float
    last: float
    containers: frozenset[str] = frozenset()
    bridges: bool = False


@dataclass(frozen=True)
class LoopState:
    burst: Burst | None
    next_drift: float


@dataclass(frozen=True)
class Step:
    """What the loop does now: reconcile `reconcile` (then None again), and/or a drift check."""

    state: LoopState
    reconcile: Burst | None = None
    drift: bool = False


def start(now: float, timing: Timing) -> LoopState:
    """A fresh session: nothing pending, the first drift check one interval away."""
    return LoopState(None, now + timing.drift_interval)


def deadline(burst: Burst, timing: Timing) -> float:
    """When a burst is reconciled if nothing else arrives."""
    return min(burst.last + timing.debounce, burst.first + timing.max_delay)


def wait_time(state: LoopState, now: float, timing: Timing) -> float:
    """How long to wait for the next event. Idle waits are cut into `stop_poll` slices
    so a stop request is seen at once, not at the next drift check."""
    if state.burst is not None:
        return max(deadline(state.burst, timing) - now, 0.0)
    return max(min(state.next_drift - now, timing.stop_poll), 0.0)


def with_event(burst: Burst | None, event: Event, now: float) -> Burst | None:
    """The burst with `event` in it; an event that names nothing to read starts none."""
    bridges = event.kind == "network" and event.action in BRIDGE_ACTIONS
    if event.container_id is None and not bridges:
        return burst
    burst = burst or Burst(first=now, last=now)
    containers = burst.containers
    if event.container_id:
        containers |= {event.container_id}
    return replace(burst, last=now, containers=containers, bridges=burst.bridges or bridges)


def step(state: LoopState, now: float, event: Event | None, timing: Timing) -> Step:
    """The decision after a wait that ended at `now` with `event` (None: it timed out).

    A burst still inside its cap keeps collecting on each event; it is reconciled at
    its deadline, or at once when an event arrives after the cap. A drift check runs
    when one is due and nothing waits to be reconciled afterwards."""
    burst = state.burst if event is None else with_event(state.burst, event, now)
    if burst is not None:
        if event is not None and now < burst.first + timing.max_delay:
            return Step(replace(state, burst=burst))
        if event is None and now < deadline(burst, timing):
            return Step(replace(state, burst=burst))  # woken early: keep waiting
    state = replace(state, burst=None)
    return Step(state, reconcile=burst, drift=now >= state.next_drift)


def bridges_changed(state: LoopState, now: float) -> LoopState:
    """The host's interfaces changed under us (seen at a drift check): Docker's networks
    are read again, debounced like an event, so a new bridge is never taken for one of
    the host's own interfaces."""
    burst = state.burst or Burst(first=now, last=now)
    return replace(state, burst=replace(burst, bridges=True))


def drift_checked(state: LoopState, now: float, timing: Timing) -> LoopState:
    """The next drift check, one interval after this one ended (a slow check never
    makes the checks run back to back)."""
    return replace(state, next_drift=now + timing.drift_interval)


def next_backoff(backoff: float, limit: float) -> float:
    """Reconnect attempts back off exponentially up to `limit`."""
    return min(backoff * 2, limit)
