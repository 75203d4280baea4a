"""The packet being simulated and the conntrack entry it belongs to.

A connection is judged by two packets: the first one (state NEW, direction ORIGINAL)
and the first reply (ESTABLISHED, REPLY), because that is all a TCP handshake or a
UDP request/answer needs, and it is where reply-dropping rules bite.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dockwall.explain.addresses import format_endpoint
from dockwall.explain.netfilter import PROTOCOL_NAMES

ICMP_ECHO = {4: (8, 0), 6: (128, 129)}


@dataclass(frozen=True)
class Tuple:
    """One direction of a conntrack entry."""

    src: int
    dst: int
    sport: int | None
    dport: int | None


@dataclass
class Conn:
    """The conntrack entry: original tuple fixed, reply tuple rewritten by NAT."""

    orig: Tuple
    reply: Tuple

    @property
    def dnat(self) -> bool:
        return (self.reply.src, self.reply.sport) != (self.orig.dst, self.orig.dport)

    @property
    def snat(self) -> bool:
        return (self.reply.dst, self.reply.dport) != (self.orig.src, self.orig.sport)


@dataclass
class Packet:
    """Mutable on purpose: NAT and MARK rewrite it as it travels through the hooks."""

    version: int
    proto: int
    src: int
    dst: int
    sport: int | None
    dport: int | None
    iif: str = ""
    oif: str = ""
    state: str = "NEW"
    direction: str = "ORIGINAL"
    tcp_flags: frozenset[str] = field(default_factory=lambda: frozenset({"SYN"}))
    icmp_type: int | None = None
    mark: int = 0

    def describe(self) -> str:
        proto = PROTOCOL_NAMES.get(self.proto, str(self.proto))
        src = format_endpoint(self.version, self.src, self.sport)
        dst = format_endpoint(self.version, self.dst, self.dport)
        return f"{proto} {src} -> {dst}"

    def tuple(self) -> Tuple:
        return Tuple(self.src, self.dst, self.sport, self.dport)


def first_packet(
    version: int, proto: int, src: int, dst: int, *, sport: int | None, dport: int | None
) -> Packet:
    icmp = ICMP_ECHO[version][0] if proto in (1, 58) else None
    flags = frozenset({"SYN"}) if proto == 6 else frozenset()
    return Packet(version, proto, src, dst, sport, dport, tcp_flags=flags, icmp_type=icmp)


def reply_packet(first: Packet, conn: Conn) -> Packet:
    """What the far end sends back, as it leaves the far end (NAT not yet reversed)."""
    icmp = ICMP_ECHO[first.version][1] if first.proto in (1, 58) else None
    flags = frozenset({"SYN", "ACK"}) if first.proto == 6 else frozenset()
    reply = conn.reply
    return replace(
        first,
        src=reply.src,
        dst=reply.dst,
        sport=reply.sport,
        dport=reply.dport,
        iif="",
        oif="",
        state="ESTABLISHED",
        direction="REPLY",
        tcp_flags=flags,
        icmp_type=icmp,
        mark=0,
    )
