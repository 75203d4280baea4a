"""The firewall setups the bench compares, each able to install and remove itself.

All of them allow the same sources to the same published ports: `entries` addresses in
total, the probing source last (the worst case for a linear chain, as for a real list
where the client happens to sit at the end).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from bench.datapath.labsetup import IPERF_PORT, RATE_PORT, BenchLab
from bench.datapath.measure import SOURCE
from dockwall.backends.base import Backend
from dockwall.backends.nftables import NftablesBackend
from dockwall.compile.ir import Allow, Filter, Guard, PortMatch, Ruleset
from dockwall.lab import topology as t
from dockwall.model.state import Network

FILLER = ipaddress.ip_network("198.18.0.0/15")


@dataclass(frozen=True)
class Setup:
    name: str
    install: Callable[[], None]
    remove: Callable[[], None]


def allowlist(entries: int) -> list[ipaddress.IPv4Address]:
    """Every other address of 198.18.0.0/15, so no two merge into one prefix."""
    base = int(FILLER.network_address)
    filler = [ipaddress.IPv4Address(base + 2 * i) for i in range(entries - 1)]
    return [*filler, ipaddress.IPv4Address(SOURCE)]


def ruleset(bench: BenchLab, entries: int) -> Ruleset:
    peers: tuple[Network, ...] = tuple(ipaddress.ip_network(a) for a in allowlist(entries))
    ports = (PortMatch("tcp", RATE_PORT, RATE_PORT), PortMatch("tcp", IPERF_PORT, IPERF_PORT))
    ingress = Filter((Allow(peers=peers, ports=ports, original=True),))
    guard = Guard("bench", "bench", "bench", bench.endpoints, ingress, None)
    return Ruleset(bench.bridges, (guard,), None, None)


def no_firewall() -> Setup:
    return Setup("no firewall", lambda: None, lambda: None)


def backend_setup(name: str, backend: Backend, rules: Ruleset) -> Setup:
    return Setup(
        name,
        lambda: backend.apply(backend.plan(rules)),
        lambda: backend.apply(backend.plan_reset()),
    )


def nftables_setup(bench: BenchLab, entries: int) -> Setup:
    return backend_setup(
        "nftables backend", NftablesBackend(bench.lab.host), ruleset(bench, entries)
    )


def linear_iptables(bench: BenchLab, entries: int) -> Setup:
    """The naive way: one RETURN per source in DOCKER-USER, then drop the rest from outside.

    No established exemption on top, so every packet of every flow walks the whole list.
    """
    rules = [f"-A DOCKER-USER -s {address}/32 -j RETURN" for address in allowlist(entries)]
    rules.append(f"-A DOCKER-USER -i {t.UPLINK_IF} -o docker0 -j DROP")
    rules.append("-A DOCKER-USER -j RETURN")
    installed = "*filter\n-F DOCKER-USER\n" + "\n".join(rules) + "\nCOMMIT\n"
    original = "*filter\n-F DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n"

    def restore(payload: str) -> None:
        bench.lab.host.run(["iptables-restore", "--noflush"], input=payload, timeout=120)

    return Setup(
        "naive linear iptables chain", lambda: restore(installed), lambda: restore(original)
    )


def iptables_backend(bench: BenchLab, entries: int) -> Setup | None:
    """dockwall's iptables backend, when it is importable; its mode is named in the row."""
    try:
        from dockwall.backends.iptables import IptablesBackend  # noqa: PLC0415
    except ImportError:
        return None
    backend = IptablesBackend(bench.lab.host)
    rules = ruleset(bench, entries)
    payload = "".join(step.payload for step in backend.plan(rules).transaction.rules)
    mode = "ipset" if "--match-set" in payload or "-m set" in payload else "no ipset"
    return backend_setup(f"iptables backend ({mode})", backend, rules)
