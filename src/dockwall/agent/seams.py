"""What the agent is given instead of building it: Docker, the firewall and the clock.

The loop sees only these protocols, so a unit test drives it with a scripted event
stream, a recording firewall and a clock that jumps, while `dockwall agent` passes the
real Docker session, the Engine and the system clock (as whalewall passes its Docker
and firewall clients in).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from dockwall.agent.events import Item
from dockwall.backends.base import Plan
from dockwall.compile.ir import Ruleset
from dockwall.engine import Selected
from dockwall.model.state import Bridge, Container, HostState, Mesh
from dockwall.policy.model import BackendChoice
from dockwall.runner import Runner


class Session(Protocol):
    """One connection to Docker: its state on demand and its events in order. Losing
    Docker mid-read raises DockerException or OSError; losing the stream arrives as a
    `Disconnected` item."""

    def state(self) -> HostState: ...

    def bridges(self) -> dict[str, Bridge]: ...

    def container(self, container_id: str, bridges: dict[str, Bridge]) -> Container | None:
        """None when the container is gone."""
        ...

    def mesh(self) -> Mesh | None:
        """The Swarm routing mesh now; None off Swarm. No event announces a service's
        ports on a worker, so the loop reads it with every refresh."""
        ...

    def next_item(self, timeout: float) -> Item | None:
        """The next event, or None when `timeout` seconds passed without one."""
        ...

    def close(self) -> None: ...


Connect = Callable[[], Session]
"""Opens a session (its events start before its state is read, so none is missed);
raises DockwallError while Docker is unreachable."""


class Firewall(Protocol):
    """The part of `Engine` the agent uses: plan, and apply with the state for boot."""

    @property
    def runner(self) -> Runner: ...

    def plan_ruleset(
        self, ruleset: Ruleset, preferred: BackendChoice = "auto"
    ) -> tuple[Selected, list[Plan]]: ...

    def plan_with(self, selected: Selected, ruleset: Ruleset) -> list[Plan]: ...

    def apply(
        self,
        selected: Selected,
        plans: list[Plan],
        ruleset: Ruleset,
        list_lines: Mapping[str, int] | None = None,
    ) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Sleeps, returning early when `stop` is set."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> None:
        stop.wait(seconds)
