"""Starting the observe services beside the agent: the drop log and the web listener.

The agent only knows a hook after each apply; what runs on threads of its own lives
here, so the reconcile loop never waits for a log write or a scrape.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram

from dockwall.agent.loop import Agent
from dockwall.backends.base import RuleCounter
from dockwall.compile.ir import Ruleset
from dockwall.engine import Selected
from dockwall.errors import DockwallError
from dockwall.model.state import Container, HostState
from dockwall.observe.counters import chain_totals
from dockwall.observe.graph import build, svg
from dockwall.observe.history import COMPOSE_PROJECT, COMPOSE_SERVICE, AddressHistory
from dockwall.observe.journal import Journal
from dockwall.observe.metrics import (
    AgentView,
    apply_histogram,
    chain_container,
    event_histogram,
    make_registry,
)
from dockwall.observe.service import DropLogService
from dockwall.observe.web import Site, is_loopback, serve
from dockwall.statefile import run_dir

Log = Callable[[str], None]
DEFAULT_LISTEN = "127.0.0.1:9771"


@dataclass(frozen=True)
class Listen:
    host: str
    port: int


def parse_listen(text: str) -> Listen:
    """`127.0.0.1:9771`, `[::1]:9771`, `0.0.0.0:9771`; `off` is handled by the caller."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise DockwallError(f"--metrics-listen {text!r}: expected ADDRESS:PORT") from None
    if not sep or not 0 < number < 65536:
        raise DockwallError(f"--metrics-listen {text!r}: expected ADDRESS:PORT")
    return Listen(host, number)


def start_drop_log(agent: Agent, log: Log, stop: threading.Event) -> DropLogService:
    """The service is told of every apply and reads NFLOG on a daemon thread."""
    directory = run_dir()
    directory.mkdir(parents=True, exist_ok=True)
    service = DropLogService(
        agent.config.policy_path.name,
        AddressHistory(directory / "addresses.json"),
        Journal(directory / "drops.jsonl"),
        log,
    )

    def applied(ruleset: Ruleset, containers: list[Container], selected: Selected) -> None:
        service.applied(ruleset, containers, selected.backend.counters)

    agent.after_apply.append(applied)
    threading.Thread(target=service.run, args=(stop,), name="drop-log", daemon=True).start()
    return service


def live_counters(agent: Agent) -> list[RuleCounter]:
    return agent.selected.backend.counters() if agent.selected else []


def page_state(agent: Agent, service: DropLogService) -> dict[str, Any]:
    """The containers with their counters, for the page (all values plain data). A
    container held only by the bridge-wide defaults has no counters of its own (None):
    the kernel counts those drops per bridge, in the defaults' chains."""
    per: dict[str, dict[str, int]] = {}
    for chain in chain_totals(live_counters(agent)):
        name = chain_container(chain, service.history)
        found = per.setdefault(name, {"ingress": 0, "egress": 0, "peers": 0, "allowed": 0})
        found[chain.direction] += chain.dropped_packets
        found["allowed"] += chain.allowed
    containers = []
    for container in sorted(agent.containers.values(), key=lambda c: c.name):
        counts = per.get(container.name)
        containers.append(
            {
                "name": container.name,
                "project": container.labels.get(COMPOSE_PROJECT),
                "service": container.labels.get(COMPOSE_SERVICE),
                "addresses": [str(a) for x in container.attachments for a in x.addresses],
                "dropped": {"ingress": counts["ingress"], "egress": counts["egress"]}
                if counts
                else None,
                "allowed": counts["allowed"] if counts else None,
            }
        )
    defaults = per.get("", {"ingress": 0, "egress": 0, "peers": 0})
    return {"backend": agent.stats.backend, "containers": containers, "defaults": defaults}


def page_svg(agent: Agent) -> str:
    state = HostState(tuple(agent.bridges.values()), tuple(agent.containers.values()))
    ruleset = agent.ruleset
    if ruleset is None:
        return svg(build(Ruleset((), (), None, None), state))
    return svg(build(ruleset, state))


def start_web(
    agent: Agent, service: DropLogService, listen: Listen, token: str | None, log: Log
) -> None:
    """Metrics and the page on one listener; a failure to bind is logged, not fatal
    (the firewall matters more than its dashboard)."""
    view = AgentView(
        counters=lambda: live_counters(agent),
        backend=lambda: agent.stats.backend,
        stats=lambda: {**agent.stats.__dict__, "containers": len(agent.containers)},
        log_stats=lambda: dict(service.stats.__dict__),
        policy_name=agent.config.policy_path.name,
        history=service.history,
    )
    registry = make_registry(view)
    durations: Histogram = apply_histogram(registry)
    latency: Histogram = event_histogram(registry)

    def timed(ruleset: Ruleset, containers: list[Container], selected: Selected) -> None:
        if agent.stats.last_reconcile_ms is not None:
            durations.observe(agent.stats.last_reconcile_ms / 1000)
        if agent.burst_started is not None:
            latency.observe(time.monotonic() - agent.burst_started)

    agent.after_apply.append(timed)
    site = Site(registry, lambda: page_state(agent, service), lambda: page_svg(agent), token)
    try:
        serve(site, listen.host, listen.port)
    except OSError as exc:
        log(f"error: metrics and page off: cannot listen on {listen.host}:{listen.port}: {exc}")
        return
    where = f"http://{'[' + listen.host + ']' if ':' in listen.host else listen.host}:{listen.port}"
    if is_loopback(listen.host):
        log(f"metrics on {where}/metrics, page on {where}/")
    else:
        log(f"WARNING: metrics and page listen on {where}, reachable from other hosts; "
            "every request needs the bearer token")  # fmt: skip
