"""How features live inside the agent without editing its loop.

Two extension points, both passed to `Agent` by `commands/agent.py`:

- a **service** is a long-running part (a DNS forwarder, a drop-log reader, a metrics
  and web server): started before the agent first connects to Docker, stopped after
  its loop ends, in reverse order. `start` returns once the service runs (on threads
  of its own); raising DockwallError there refuses to start the agent, with every
  service already started stopped again.
- an **after-apply hook** is called after each apply that put a ruleset in force, with
  what was compiled and the host state it was compiled from: what a forwarder needs to
  know which names to learn, or a log reader to name the containers behind addresses.

Hooks run on the loop's thread between reconciles, so they must be quick (hand work
to the service's own thread). A failing hook or service stop is logged and never ends
the agent: the firewall is the agent's job, and it goes on enforcing the policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from dockwall.compile.compiler import Compiled
from dockwall.model.state import HostState
from dockwall.policy import Policy

Log = Callable[[str], None]


@dataclass(frozen=True)
class Hosting:
    """What a service gets from the agent: the stop request it shares, and its log."""

    stop: threading.Event
    log: Log


class Service(Protocol):
    name: str

    def start(self, hosting: Hosting) -> None: ...

    def stop(self) -> None:
        """Bounded in time: the agent is shutting down."""
        ...


@dataclass(frozen=True)
class Enforced:
    """One apply the agent made: the ruleset now in force (`compiled.ruleset`), the
    policy and host state behind it, and the backend that loaded it."""

    policy: Policy
    state: HostState
    compiled: Compiled
    backend: str
    reason: str


AfterApply = Callable[[Enforced], None]


def start_services(services: Sequence[Service], hosting: Hosting) -> list[Service]:
    """Starts each in order; on a failure, stops those already running and re-raises."""
    started: list[Service] = []
    try:
        for service in services:
            service.start(hosting)
            started.append(service)
            hosting.log(f"service {service.name} started")
    except BaseException:
        stop_services(started, hosting.log)
        raise
    return started


def stop_services(services: Sequence[Service], log: Log) -> None:
    for service in reversed(services):
        try:
            service.stop()
        except Exception as exc:  # one service's bug must not keep the others running
            log(f"error: service {service.name} did not stop cleanly: {exc!r}")


def notify(hooks: Sequence[AfterApply], enforced: Enforced, log: Log) -> None:
    for hook in hooks:
        try:
            hook(enforced)
        except Exception as exc:  # an extension's bug must not stop enforcement
            log(f"error: after-apply hook {getattr(hook, '__name__', hook)!r} failed: {exc!r}")
