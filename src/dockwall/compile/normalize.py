"""One spelling for what a policy means: merged address lists and merged port lists.

Users write the same thing many ways (`0.0.0.0/0` for "any IPv4 address", a /24 next to
a host inside it, `80/tcp` next to `80-90/tcp`). The backends must render one meaning
one way, or a plan would show a change that the kernel has already taken in, and
nothing would ever converge. So the compiler hands them the shortest exact form:

- addresses merged per family (covered and duplicate prefixes go, touching ones join);
  a /0 of both families is no restriction at all, `None`;
- ports merged per protocol (overlapping and touching ranges join), ICMP once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from dockwall.compile.ir import PortMatch, Proto
from dockwall.model.state import Network

PROTO_ORDER: dict[Proto, int] = {"tcp": 0, "udp": 1, "icmp": 2}


def peers(networks: Iterable[Network] | None) -> tuple[Network, ...] | None:
    """The fewest prefixes covering exactly the given addresses, IPv4 first, in address
    order; None (any address) when they cover every address of both families."""
    if networks is None:
        return None
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    merged: list[Network] = [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    if len(merged) == 2 and all(n.prefixlen == 0 for n in merged):
        return None
    return tuple(merged)


def is_any_of_family(network: Network) -> bool:
    """A /0: every address of its family, which a backend writes as no address match."""
    return network.prefixlen == 0


def ports(given: Iterable[PortMatch]) -> tuple[PortMatch, ...]:
    """Ranges of one protocol that overlap or touch become one; tcp, then udp, then icmp."""
    merged: list[PortMatch] = []
    for port in sorted(set(given), key=port_order):
        last = merged[-1] if merged else None
        if last is not None and last.proto == port.proto and touches(last, port):
            merged[-1] = PortMatch(last.proto, last.first, max_port(last, port))
        else:
            merged.append(port)
    return tuple(merged)


def port_order(port: PortMatch) -> tuple[int, int, int]:
    return PROTO_ORDER[port.proto], port.first or 0, port.last or 0


def touches(a: PortMatch, b: PortMatch) -> bool:
    """b starts no later than one past a's end (b sorts after a); portless always merges."""
    if a.first is None or a.last is None or b.first is None:
        return True
    return b.first <= a.last + 1


def max_port(a: PortMatch, b: PortMatch) -> int | None:
    if a.last is None or b.last is None:
        return None
    return max(a.last, b.last)
