"""The observe services the agent hosts: the drop log and the web listener.

They run on threads of their own (agent/services.py), so the reconcile loop never waits
for a log write or a scrape; the after-apply hook only hands them what was enforced.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import Histogram
from prometheus_client.registry import Collector

from dockwall.agent.loop import Agent
from dockwall.agent.services import Enforced, Hosting, Service
from dockwall.backends.base import RuleCounter
from dockwall.compile.ir import Ruleset
from dockwall.errors import DockwallError
from dockwall.model.state import HostState
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
from dockwall.observe.service import DropLogService, FqdnOf
from dockwall.observe.web import Site, is_loopback, serve
from dockwall.statedir import run_dir

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


class Observe:
    """The drop log and the web listener as agent services, and the hook that tells them
    of every apply (agent/services.py). `agent` is set once the Agent exists: the
    services read its containers, backend and stats only when asked. Other features
    reach the metrics and drop records through `collectors` and `fqdn_of` (the DNS
    forwarder's, given by commands/agent.py), so observe never imports them."""

    def __init__(
        self,
        policy_name: str,
        listen: Listen | None,
        token: str | None,
        collectors: Iterable[Collector] = (),
        fqdn_of: FqdnOf = lambda _: None,
    ) -> None:
        directory = run_dir()
        self.agent: Agent | None = None
        self.listen, self.token = listen, token
        self.drops = DropLogService(
            policy_name,
            AddressHistory(directory / "addresses.json"),
            Journal(directory / "drops.jsonl"),
            print,
            fqdn_of,
        )
        view = AgentView(
            counters=self.counters,
            backend=lambda: self.agent.stats.backend if self.agent else None,
            stats=self.agent_stats,
            log_stats=lambda: dict(self.drops.stats.__dict__),
            policy_name=policy_name,
            history=self.drops.history,
            ruleset=lambda: self.drops.ruleset,
        )
        self.registry = make_registry(view, collectors)
        self.durations: Histogram = apply_histogram(self.registry)
        self.latency: Histogram = event_histogram(self.registry)

    def counters(self) -> list[RuleCounter]:
        return live_counters(self.agent) if self.agent else []

    def agent_stats(self) -> dict[str, object]:
        if self.agent is None:
            return {}
        return {**self.agent.stats.__dict__, "containers": len(self.agent.containers)}

    def services(self) -> list[Service]:
        found: list[Service] = [DropLogRunner(self)]
        if self.listen is not None:
            found.append(WebListener(self, self.listen))
        return found

    def applied(self, enforced: Enforced) -> None:
        """After each apply: the log learns the addresses, the metrics the timings."""
        self.drops.applied(
            enforced.compiled.ruleset, list(enforced.state.containers), self.counters
        )
        agent = self.agent
        if agent is None:
            return
        if agent.stats.last_reconcile_ms is not None:
            self.durations.observe(agent.stats.last_reconcile_ms / 1000)
        if agent.burst_started is not None:
            self.latency.observe(max(agent.clock.now() - agent.burst_started, 0.0))


class DropLogRunner:
    """Reads NFLOG on a thread of its own for as long as the agent runs."""

    name = "drop-log"

    def __init__(self, observe: Observe) -> None:
        self.observe = observe
        self.thread: threading.Thread | None = None

    def start(self, hosting: Hosting) -> None:
        self.observe.drops.log = hosting.log
        self.thread = threading.Thread(
            target=self.observe.drops.run, args=(hosting.stop,), name="drop-log", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=2.0)


class WebListener:
    """/metrics and the page; a failure to bind is logged, not fatal (the firewall
    matters more than its dashboard)."""

    name = "web"

    def __init__(self, observe: Observe, listen: Listen) -> None:
        self.observe, self.listen = observe, listen
        self.server: ThreadingHTTPServer | None = None

    def start(self, hosting: Hosting) -> None:
        observe, listen = self.observe, self.listen
        site = Site(
            observe.registry,
            lambda: page_state(observe.agent, observe.drops) if observe.agent else {},
            lambda: page_svg(observe.agent) if observe.agent else "",
            observe.token,
        )
        try:
            self.server = serve(site, listen.host, listen.port)
        except OSError as exc:
            hosting.log(
                f"error: metrics and page off: cannot listen on {listen.host}:{listen.port}: {exc}"
            )
            return
        host = f"[{listen.host}]" if ":" in listen.host else listen.host
        where = f"http://{host}:{listen.port}"
        if is_loopback(listen.host):
            hosting.log(f"metrics on {where}/metrics, page on {where}/")
        else:
            hosting.log(f"WARNING: metrics and page listen on {where}, reachable from other "
                        "hosts; every request needs the bearer token")  # fmt: skip

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
