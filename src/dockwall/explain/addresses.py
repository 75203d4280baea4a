"""Addresses as (version, int) pairs: the simulator compares integers, not objects."""

from __future__ import annotations

import ipaddress

from dockwall.errors import DockwallError
from dockwall.explain.model import Net

ALL_ONES = {4: (1 << 32) - 1, 6: (1 << 128) - 1}


def parse_net(text: str) -> Net:
    """`10.0.0.0/8`, `10.1.2.3`, `10.0.0.0/255.0.0.0` or an IPv6 block; host bits are dropped."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise DockwallError(f"{text!r} is not an address or network") from exc
    return Net(network.version, int(network.network_address), int(network.netmask))


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
