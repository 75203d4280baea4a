"""Addresses as (version, int) pairs: the simulator compares integers, not objects."""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

from dockwall.errors import DockwallError
from dockwall.explain.netfilter import Net

ALL_ONES = {4: (1 << 32) - 1, 6: (1 << 128) - 1}
IPV4_ALL = ALL_ONES[4]


def parse_net(text: str) -> Net:
    """`10.0.0.0/8`, `10.1.2.3`, `10.0.0.0/255.0.0.0` or an IPv6 block; host bits are dropped.

    Plain IPv4 takes a fast path (cheaper than a cache lookup): a 10,000-rule ruleset is
    mostly `-s A.B.C.D/N`. Everything else goes through ipaddress, cached.
    """
    fast = fast_ipv4(text)
    return fast if fast is not None else slow_net(text)


@lru_cache(maxsize=65536)
def slow_net(text: str) -> Net:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise DockwallError(f"{text!r} is not an address or network") from exc
    return Net(network.version, int(network.network_address), int(network.netmask))


def fast_ipv4(text: str) -> Net | None:
    """`A.B.C.D` or `A.B.C.D/N` exactly as ipaddress would read them, else None."""
    address, _, length = text.partition("/")
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
    except OSError:
        return None
    if not length:
        return Net(4, value, IPV4_ALL)
    if not (length.isdecimal() and length.isascii() and len(length) <= 2 and int(length) <= 32):
        return None
    mask = (IPV4_ALL << (32 - int(length))) & IPV4_ALL
    return Net(4, value & mask, mask)


def parse_address(text: str) -> tuple[int, int]:
    """A single address (IPv6 may be bracketed) as (version, int)."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError as exc:
        raise DockwallError(f"{text!r} is not an IP address") from exc
    return address.version, int(address)


def format_address(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def format_endpoint(version: int, value: int, port: int | None) -> str:
    text = format_address(version, value)
    if port is None:
        return text
    return f"[{text}]:{port}" if version == 6 else f"{text}:{port}"
