"""Evaluates one test against the packet: True, False, or None when it cannot know.

Dispatch is a dict keyed by the test's class: one lookup per test keeps a
10,000-rule walk in the low milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockwall.explain.hostnet import HostNet
from dockwall.explain.iptables.ipsets import LiveIpSets, not_read
from dockwall.explain.netfilter import (
    Addr,
    AddrRange,
    AddrType,
    AnyOf,
    Condition,
    CtAddr,
    CtDir,
    CtPort,
    CtState,
    IcmpType,
    Iface,
    Mark,
    NfProto,
    PktType,
    Port,
    Proto,
    SetMatch,
    TcpFlags,
    Test,
    Unsupported,
)
from dockwall.explain.packet import Conn, Packet, Tuple

PORT_PROTOCOLS = frozenset({6, 17, 132, 136})


@dataclass
class Context:
    """What a rule can look at: the packet, its connection, the host (addresses, routes,
    ipset sets), and whether conntrack has seen the packet yet (not in the raw table)."""

    packet: Packet
    conn: Conn
    host: HostNet
    tracked: bool = True
    sets: LiveIpSets = field(default_factory=not_read)


def evaluate(condition: Condition, ctx: Context) -> bool | None:
    result = TESTS[type(condition.test)](condition.test, ctx)
    if result is None or not condition.negate:
        return result
    return not result


def addr(test: Addr, ctx: Context) -> bool:
    """The hottest test of a big ruleset (`-s A.B.C.D -j DROP` x 10,000): a plain loop."""
    p = ctx.packet
    value = p.src if test.field == "src" else p.dst
    for net in test.nets:  # noqa: SIM110 - any() over a generator costs twice as much
        if net.version == p.version and value & net.mask == net.address:
            return True
    return False


def addr_range(test: AddrRange, ctx: Context) -> bool:
    p = ctx.packet
    value = p.src if test.field == "src" else p.dst
    return p.version == test.version and test.low <= value <= test.high


def iface_matches(name: str, pattern: str) -> bool:
    if pattern.endswith(("+", "*")):
        return name.startswith(pattern[:-1])
    return name == pattern


def iface(test: Iface, ctx: Context) -> bool:
    name = ctx.packet.iif if test.field == "in" else ctx.packet.oif
    return any(iface_matches(name, pattern) for pattern in test.names)


def proto(test: Proto, ctx: Context) -> bool:
    return ctx.packet.proto in test.numbers


def nfproto(test: NfProto, ctx: Context) -> bool:
    return ctx.packet.version == test.version


def in_ranges(value: int | None, ranges: tuple[tuple[int, int], ...]) -> bool:
    return value is not None and any(low <= value <= high for low, high in ranges)


def port(test: Port, ctx: Context) -> bool:
    p = ctx.packet
    if p.proto not in PORT_PROTOCOLS or (test.protocol is not None and p.proto != test.protocol):
        return False
    return in_ranges(p.sport if test.field == "sport" else p.dport, test.ranges)


def ct_state(test: CtState, ctx: Context) -> bool | None:
    if not ctx.tracked:
        return None
    states = {ctx.packet.state}
    if ctx.conn.dnat:
        states.add("DNAT")
    if ctx.conn.snat:
        states.add("SNAT")
    return bool(states & test.states)


def ct_dir(test: CtDir, ctx: Context) -> bool | None:
    return ctx.packet.direction == test.direction if ctx.tracked else None


def ct_tuple(field: str, ctx: Context) -> tuple[Tuple, str]:
    conn_tuple = ctx.conn.orig if field.startswith("orig") else ctx.conn.reply
    return conn_tuple, field[4:]


def ct_addr(test: CtAddr, ctx: Context) -> bool | None:
    if not ctx.tracked:
        return None
    conn_tuple, side = ct_tuple(test.field, ctx)
    value = conn_tuple.src if side == "src" else conn_tuple.dst
    return any(n.contains(ctx.packet.version, value) for n in test.nets)


def ct_port(test: CtPort, ctx: Context) -> bool | None:
    if not ctx.tracked:
        return None
    conn_tuple, side = ct_tuple(test.field, ctx)
    return in_ranges(conn_tuple.sport if side == "src" else conn_tuple.dport, test.ranges)


def addr_type(test: AddrType, ctx: Context) -> bool:
    p = ctx.packet
    value = p.src if test.field == "src" else p.dst
    return bool(ctx.host.address_types(p.version, value) & test.types)


def icmp_type(test: IcmpType, ctx: Context) -> bool:
    p = ctx.packet
    if p.icmp_type is None or p.version != test.version:
        return False
    return p.icmp_type == test.type and test.code in (None, 0)


def tcp_flags(test: TcpFlags, ctx: Context) -> bool:
    p = ctx.packet
    return p.proto == 6 and p.tcp_flags & test.mask == test.comp


def mark(test: Mark, ctx: Context) -> bool:
    return ctx.packet.mark & test.mask == test.value


def pkt_type(test: PktType, ctx: Context) -> bool:
    return "unicast" in test.types or "host" in test.types


def set_match(test: SetMatch, ctx: Context) -> bool | None:
    return ctx.sets.test(test, ctx.packet)


def unsupported(test: Unsupported, ctx: Context) -> None:
    return None


def unknown_text(test: Test, ctx: Context) -> str:
    """What to name when `test` could not be evaluated, and why if there is more to say."""
    if isinstance(test, SetMatch):
        reason = ctx.sets.why(test, ctx.packet)
        return f"{test.text} ({reason})" if reason else test.text
    return str(getattr(test, "text", test))


def any_of(test: AnyOf, ctx: Context) -> bool | None:
    """True when every condition of one option holds; None when that cannot be told."""
    unknown = False
    for option in test.options:
        outcome: bool | None = True
        for condition in option:
            result = evaluate(condition, ctx)
            if result is False:
                outcome = False
                break
            if result is None:
                outcome = None
        if outcome:
            return True
        unknown = unknown or outcome is None
    return None if unknown else False


TESTS: dict[type, Callable[[Any, Context], bool | None]] = {
    Addr: addr,
    AddrRange: addr_range,
    Iface: iface,
    Proto: proto,
    NfProto: nfproto,
    Port: port,
    CtState: ct_state,
    CtDir: ct_dir,
    CtAddr: ct_addr,
    CtPort: ct_port,
    AddrType: addr_type,
    IcmpType: icmp_type,
    TcpFlags: tcp_flags,
    Mark: mark,
    PktType: pkt_type,
    SetMatch: set_match,
    AnyOf: any_of,
    Unsupported: unsupported,
}
