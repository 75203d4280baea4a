"""Addresses as (version, int) pairs: the simulator compares integers, not objects."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from dockwall.errors import DockwallError
from dockwall.explain.model import Net

ALL_ONES = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


@lru_cache(maxsize=65536)
def parse_net(text: str) -> Net:
    """`10.0.0.0/8`, `10.1.2.3`, `10.0.0.0/255.0.0.0` or an IPv6 block; host bits are dropped.

    Plain IPv4 takes a fast path: a 10,000-rule ruleset is mostly `-s A.B.C.D/N`.
    """
    fast = fast_ipv4(text)
    if fast is not None:
        return fast
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise DockwallError(f"{text!r} is not an address or network") from exc
    return Net(network.version, int(network.network_address), int(network.netmask))


def fast_ipv4(text: str) -> Net | None:
    address, _, length = text.partition("/")
    parts = address.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    if length and not (length.isdigit() and int(length) <= 32):
        return None
    bits = int(length) if length else 32
    mask = (ALL_ONES[4] << (32 - bits)) & ALL_ONES[4]
    a, b, c, d = (int(p) for p in parts)
    return Net(4, ((a << 24) | (b << 16) | (c << 8) | d) & mask, mask)


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
