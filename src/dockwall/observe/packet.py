"""The headers of a logged packet: addresses, protocol and ports."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from dockwall.model.state import Address

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp"}
PORTED = {6, 17, 132}
IPV6_EXTENSIONS = {0, 43, 60}


@dataclass(frozen=True)
class Headers:
    source: Address
    destination: Address
    proto: str
    source_port: int | None
    destination_port: int | None


def headers(payload: bytes) -> Headers | None:
    """None for anything too short or not IP (the log never guesses)."""
    if not payload:
        return None
    version = payload[0] >> 4
    if version == 4 and len(payload) >= 20:
        ihl = (payload[0] & 0x0F) * 4
        proto = payload[9]
        return with_ports(
            ipaddress.IPv4Address(payload[12:16]),
            ipaddress.IPv4Address(payload[16:20]),
            proto,
            payload[ihl:],
        )
    if version == 6 and len(payload) >= 40:
        proto, offset = payload[6], 40
        while proto in IPV6_EXTENSIONS and offset + 8 <= len(payload):
            proto, length = payload[offset], (payload[offset + 1] + 1) * 8
            offset += length
        return with_ports(
            ipaddress.IPv6Address(payload[8:24]),
            ipaddress.IPv6Address(payload[24:40]),
            proto,
            payload[offset:],
        )
    return None


def with_ports(src: Address, dst: Address, proto: int, rest: bytes) -> Headers:
    name = PROTOCOLS.get(proto, str(proto))
    if proto in PORTED and len(rest) >= 4:
        sport, dport = struct.unpack_from("!HH", rest)
        return Headers(src, dst, name, sport, dport)
    return Headers(src, dst, name, None, None)
