"""The host's addresses and routes (`ip -j addr`, `ip -j route show table all`).

The simulator needs three answers from them: is an address local, which interface
does a packet to X leave by, and which source address does MASQUERADE pick there.
Policy routing (`ip rule`) is not modelled: the main table decides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address, parse_net
from dockwall.explain.netfilter import Net


@dataclass(frozen=True)
class IfAddr:
    dev: str
    version: int
    address: int
    prefix: int
    scope: str


@dataclass(frozen=True)
class Route:
    version: int
    net: Net
    prefix: int
    dev: str
    kind: str
    table: str
    metric: int = 0
    prefsrc: int | None = None


@dataclass(frozen=True)
class HostNet:
    addresses: tuple[IfAddr, ...]
    routes: tuple[Route, ...]

    def is_local(self, version: int, address: int) -> bool:
        if any(a.version == version and a.address == address for a in self.addresses):
            return True
        return any(r.kind == "local" and r.net.contains(version, address) for r in self.routes) or (
            version == 6 and address == 1
        )

    def address_types(self, version: int, address: int) -> frozenset[str]:
        """What `-m addrtype` / `fib type` would say about an address."""
        if self.is_local(version, address):
            return frozenset({"LOCAL"})
        if (version == 4 and address >> 28 == 0xE) or (version == 6 and address >> 120 == 0xFF):
            return frozenset({"MULTICAST"})
        if any(r.kind == "broadcast" and r.net.contains(version, address) for r in self.routes):
            return frozenset({"BROADCAST"})
        route = self.lookup(version, address)
        if route is None or route.kind in ("unreachable", "prohibit", "blackhole"):
            kind = route.kind.upper() if route else "UNREACHABLE"
            return frozenset({kind})
        return frozenset({"UNICAST"})

    def lookup(self, version: int, address: int) -> Route | None:
        """Longest prefix in the main table, lowest metric first on a tie."""
        best: Route | None = None
        for route in self.routes:
            if route.table != "main" or not route.net.contains(version, address):
                continue
            if best is None or (route.prefix, -route.metric) > (best.prefix, -best.metric):
                best = route
        return best

    def source_address(self, version: int, dev: str, route: Route | None = None) -> int | None:
        """The address the kernel (and MASQUERADE) puts on packets leaving by `dev`."""
        if route is not None and route.prefsrc is not None:
            return route.prefsrc
        for scope in ("global", "site", "link"):
            for a in self.addresses:
                if a.dev == dev and a.version == version and a.scope == scope:
                    return a.address
        return None


def parse_addresses(text: str) -> tuple[IfAddr, ...]:
    found: list[IfAddr] = []
    for link in load(text, "ip -j addr"):
        for info in link.get("addr_info", []):
            if info.get("family") not in ("inet", "inet6") or "local" not in info:
                continue
            version, value = parse_address(info["local"])
            scope = str(info.get("scope", "global"))
            found.append(IfAddr(link["ifname"], version, value, int(info["prefixlen"]), scope))
    return tuple(found)


def parse_routes(text: str, version: int) -> tuple[Route, ...]:
    return tuple(route for item in load(text, "ip -j route") if (route := to_route(item, version)))


def to_route(item: dict[str, Any], version: int) -> Route | None:
    dst = item.get("dst", "default")
    if dst == "default":
        dst = "0.0.0.0/0" if version == 4 else "::/0"
    try:
        net = parse_net(dst)
    except DockwallError:
        return None
    prefix = bin(net.mask).count("1")
    prefsrc = parse_address(item["prefsrc"])[1] if "prefsrc" in item else None
    return Route(
        version=net.version,
        net=net,
        prefix=prefix,
        dev=str(item.get("dev", "")),
        kind=str(item.get("type", "unicast")),
        table=str(item.get("table", "main")),
        metric=int(item.get("metric", 0)),
        prefsrc=prefsrc,
    )


def load(text: str, what: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text or "[]")
    except ValueError as exc:
        raise DockwallError(f"{what} did not print JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DockwallError(f"{what} did not print a JSON list")
    return data
