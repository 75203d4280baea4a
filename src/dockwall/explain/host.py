"""Everything explain and audit know about a host, gathered once.

Kept free of subprocess and Docker calls so unit tests build it from saved files. Not
`model.HostState`: the compiler sees networks and selectors, the simulator needs
addresses as integers, privileges, each container's process and the whole live ruleset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockwall.explain.hostnet import HostNet
from dockwall.explain.iptables.ipsets import LiveIpSets, not_read
from dockwall.explain.live_ruleset import LiveRuleset


@dataclass(frozen=True)
class Published:
    """One `-p` binding: host address ("" or 0.0.0.0/:: for all), host port, container port."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str


@dataclass(frozen=True)
class LiveContainer:
    """A running container as the simulator needs it (`model.Container` is the compiler's)."""

    name: str
    addresses: dict[int, tuple[int, ...]]
    published: tuple[Published, ...] = ()
    network_mode: str = "bridge"
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    pid: int = 0
    """Its main process, whose /proc/PID/ns/net is the namespace its sockets live in."""


@dataclass
class LiveHost:
    """The live host: every table of every tool, addresses, routes, sysctls, containers."""

    ruleset: LiveRuleset
    net: HostNet
    containers: list[LiveContainer] = field(default_factory=list)
    forwarding: dict[int, bool] = field(default_factory=lambda: {4: True, 6: True})
    bridge_nf: dict[int, bool] = field(default_factory=lambda: {4: True, 6: True})
    conntrack: tuple[int, int] | None = None
    rule_sources: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    ipsets: LiveIpSets = field(default_factory=not_read)

    def container(self, name: str) -> LiveContainer | None:
        return next((c for c in self.containers if c.name == name), None)
