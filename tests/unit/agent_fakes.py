"""A scripted Docker, a recording firewall and a clock that jumps: the agent's loop
without Docker, root or sleeping. Every wait advances the fake clock instead."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from dockwall.agent.events import Item
from dockwall.backends.base import Change, Plan, RuleCounter
from dockwall.compile.ir import Ruleset
from dockwall.engine import BackendChoice, Selected
from dockwall.errors import DockwallError
from dockwall.model.state import Bridge, Container, HostState, Mesh

from .fakes import FakeRunner

Action = Callable[[], None]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, stop: threading.Event, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class FakeBackend:
    name = "fake"

    def plan(self, ruleset: Ruleset) -> Plan:
        raise AssertionError("the agent plans through the engine")

    def plan_reset(self) -> Plan:
        raise AssertionError("the agent never resets")

    def apply(self, plan: Plan) -> None:
        raise AssertionError("the agent applies through the engine")

    def counters(self) -> list[RuleCounter]:
        return []

    def installed(self) -> bool:
        return True


class FakeNftables(FakeBackend):
    """The backend whose drift checks the generation gate may skip."""

    name = "nftables"


SELECTED = Selected(FakeBackend(), "test", ())
DRIFT = Change("ipv4", "add", "DOCKWALL-FORWARD", "our rules")


@dataclass
class FakeFirewall:
    """The kernel is `live`: a plan is in sync when live equals the planned ruleset."""

    clock: FakeClock
    runner: FakeRunner = field(default_factory=lambda: FakeRunner(lambda argv, _: (1, "")))
    live: Ruleset | None = None
    applied: list[tuple[float, Ruleset]] = field(default_factory=list)
    selections: int = 0
    fail: DockwallError | None = None
    selected: Selected = SELECTED
    plans: list[float] = field(default_factory=list)
    generation: int = 0  # nf_tables' commits, anyone's
    own: int = 0  # those made by the agent's own (DNS) writer

    def plan_ruleset(
        self, ruleset: Ruleset, preferred: BackendChoice = "auto"
    ) -> tuple[Selected, list[Plan]]:
        self.selections += 1
        return self.selected, self.plan_with(self.selected, ruleset)

    def plan_with(self, selected: Selected, ruleset: Ruleset) -> list[Plan]:
        self.plans.append(self.clock.t)
        if self.fail is not None:
            raise self.fail
        return [Plan("fake", () if self.live == ruleset else (DRIFT,))]

    def apply(
        self,
        selected: Selected,
        plans: list[Plan],
        ruleset: Ruleset,
        list_lines: Mapping[str, int] | None = None,
    ) -> None:
        self.live = ruleset
        self.generation += 1
        self.applied.append((self.clock.t, ruleset))

    def stamp(self) -> tuple[int, int]:
        return self.generation, self.own


@dataclass
class Host:
    """What Docker knows right now; script actions change it."""

    bridges: tuple[Bridge, ...]
    containers: dict[str, Container]

    def run(self, container: Container) -> Action:
        return lambda: self.containers.__setitem__(container.id, container)

    def remove(self, container_id: str) -> Action:
        return lambda: self.containers.pop(container_id, None) and None

    def relabel(self, container_id: str, labels: dict[str, str]) -> Action:
        def act() -> None:
            self.containers[container_id] = replace(self.containers[container_id], labels=labels)

        return act


@dataclass
class FakeSession:
    """Hands out scripted items at their times; a callable in the script runs at its time
    (it changes the host or the firewall), and the wait returns as if woken early."""

    clock: FakeClock
    host: Host
    script: list[tuple[float, Item | Action]]
    fail_state: Exception | None = None
    closed: bool = False

    def state(self) -> HostState:
        if self.fail_state is not None:
            raise self.fail_state
        return HostState(self.host.bridges, tuple(self.host.containers.values()))

    def bridges(self) -> dict[str, Bridge]:
        return {b.network: b for b in self.host.bridges}

    def container(self, container_id: str, bridges: dict[str, Bridge]) -> Container | None:
        return self.host.containers.get(container_id)

    def mesh(self) -> Mesh | None:
        return None

    def next_item(self, timeout: float) -> Item | None:
        if self.script and self.script[0][0] <= self.clock.t + timeout:
            at, thing = self.script.pop(0)
            self.clock.t = max(self.clock.t, at)
            if callable(thing):
                thing()
                return None
            return thing
        self.clock.t += timeout
        return None

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeDocker:
    """`connect`: each call opens the next session (or raises the next error); the agent
    is stopped once the last session's script is done and `until` has passed."""

    clock: FakeClock
    stop: threading.Event
    sessions: list[FakeSession | DockwallError]
    until: float
    opened: list[float] = field(default_factory=list)

    def __call__(self) -> FakeSession:
        self.opened.append(self.clock.t)
        if not self.sessions:
            raise AssertionError("connected more often than scripted")
        session = self.sessions.pop(0)
        if isinstance(session, DockwallError):
            return self.refuse(session)
        if not self.sessions:
            session.script.append((self.until, self.stop.set))
        return session

    def refuse(self, error: DockwallError) -> FakeSession:
        raise error
