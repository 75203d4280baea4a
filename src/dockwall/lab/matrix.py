"""The demo's table of who can reach what, measured with real packets."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from dockwall.lab import topology as t
from dockwall.lab.probe import Probe, Prober, Proto
from dockwall.runner import netns_path

INGRESS_SOURCES = ("192.0.2.100", "198.51.100.7", "2001:db8:100::100", "2001:db8:200::7")
EGRESS_TARGETS: tuple[tuple[str, int, Proto], ...] = (
    ("203.0.113.10", 443, "tcp"),
    ("203.0.113.10", 80, "tcp"),
    ("198.51.100.7", 443, "tcp"),
    ("203.0.113.20", 53, "udp"),
    ("2001:db8:203::10", 443, "tcp"),
    ("2001:db8:203::10", 80, "tcp"),
    (t.HOST_UPLINK_V4, t.HOST_SERVICE_PORT, "tcp"),
)


@dataclass(frozen=True)
class Cell:
    source: str
    destination: str
    open: bool


@dataclass(frozen=True)
class Matrix:
    ingress: list[Cell]
    egress: list[Cell]


def published_ports(prober: Prober) -> list[tuple[str, int, Proto]]:
    """(container, host port, protocol) for every port the lab's containers publish."""
    found: list[tuple[str, int, Proto]] = []
    with prober.lab.client() as client:
        for container in sorted(client.containers.list(), key=lambda c: str(c.name)):
            for key, bindings in sorted((container.ports or {}).items()):
                proto: Proto = "udp" if key.endswith("/udp") else "tcp"
                for port in sorted({int(b["HostPort"]) for b in bindings or []}):
                    found.append((str(container.name), port, proto))
    return found


def running_containers(prober: Prober) -> list[str]:
    with prober.lab.client() as client:
        return sorted(str(c.name) for c in client.containers.list())


def measure(prober: Prober) -> Matrix:
    ports = published_ports(prober)
    inet = netns_path(prober.lab.names.inet_ns)
    ingress_probes: list[tuple[Cell, Probe]] = []
    for src in INGRESS_SOURCES:
        host = t.HOST_UPLINK_V6 if ":" in src else t.HOST_UPLINK_V4
        for name, port, proto in ports:
            cell = Cell(src, f"{name} host:{port}/{proto}", False)
            ingress_probes.append((cell, Probe(host, port, proto, src)))
    answers = prober.run(inet, [p for _, p in ingress_probes])
    ingress = [
        Cell(c.source, c.destination, ok)
        for (c, _), ok in zip(ingress_probes, answers, strict=True)
    ]
    egress: list[Cell] = []
    for name in running_containers(prober):
        probes = [Probe(dst, port, proto) for dst, port, proto in EGRESS_TARGETS]
        answers = prober.run(prober.container_netns(name), probes)
        egress += [Cell(name, p.label(), ok) for p, ok in zip(probes, answers, strict=True)]
    return Matrix(ingress, egress)


def table(title: str, cells: list[Cell], *, by_destination: bool = False) -> Table:
    """Rows are sources, or destinations when `by_destination` (wide tables read better)."""
    if by_destination:
        cells = [Cell(c.destination, c.source, c.open) for c in cells]
    columns = list(dict.fromkeys(c.destination for c in cells))
    rows = list(dict.fromkeys(c.source for c in cells))
    grid = {(c.source, c.destination): c.open for c in cells}
    result = Table(title=title, title_justify="left")
    result.add_column("to \\ from" if by_destination else "from \\ to")
    for column in columns:
        result.add_column(column, justify="center")
    for row in rows:
        result.add_row(
            row, *("[green]open[/]" if grid[(row, col)] else "[red]closed[/]" for col in columns)
        )
    return result
