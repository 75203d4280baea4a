"""The small string forms inside a policy: port specs, CIDRs, names and label selectors.

Each parser raises SpecError with a message that names the text and, where a likely
intent is clear, suggests the fix; most policy typos end up in one of these messages.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Literal

from dockwall.policy.problems import clip, did_you_mean

Protocol = Literal["tcp", "udp", "icmp"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp", "icmp")
ANY = "any"
PORT_MIN = 1
PORT_MAX = 65535
MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

_PORT_SPEC = re.compile(
    r"(?P<first>[0-9]{1,9})(?:-(?P<last>[0-9]{1,9}))?(?:/(?P<proto>.*))?", re.ASCII
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)


class SpecError(ValueError):
    """A string that does not have the form its field needs; the message is for the user."""


@functools.lru_cache(maxsize=4096)
def parse_port_range(text: str) -> tuple[Protocol, int | None, int | None]:
    """`N/proto`, `N-M/proto` or `icmp` as (protocol, first, last)."""
    if text == "icmp":
        return "icmp", None, None
    match = _PORT_SPEC.fullmatch(text)
    if match is None:
        raise SpecError(f"{clip(text)} is not a port: write N/tcp, N-M/udp or icmp")
    first, last = int(match["first"]), int(match["last"] or match["first"])
    for port in (first, last):
        if not PORT_MIN <= port <= PORT_MAX:
            raise SpecError(f"port {port} is out of range {PORT_MIN}-{PORT_MAX}")
    proto = _protocol(text, match["proto"])
    if first > last:
        raise SpecError(f"range {first}-{last} is reversed; did you mean {last}-{first}/{proto}?")
    return proto, first, last


def _protocol(text: str, proto: str | None) -> Protocol:
    """The protocol after the slash, with a suggestion when it is missing or wrong."""
    if proto is None:
        raise SpecError(f"port {text} needs a protocol; did you mean {text}/tcp?")
    if proto == "icmp":
        raise SpecError(f"icmp has no ports; write just icmp instead of {text}")
    if proto not in ("tcp", "udp"):
        hint = did_you_mean(proto.lower(), PROTOCOLS)
        raise SpecError(
            f"unknown protocol {clip(proto)} in {clip(text)}: use tcp, udp or icmp{hint}"
        )
    return "tcp" if proto == "tcp" else "udp"


def format_port_range(proto: Protocol, first: int | None, last: int | None) -> str:
    """The inverse of parse_port_range."""
    if first is None or last is None:
        return proto
    span = str(first) if first == last else f"{first}-{last}"
    return f"{span}/{proto}"


@functools.lru_cache(maxsize=4096)
def parse_network(text: str) -> Network:
    """A CIDR, or a bare address meaning just that host; host bits set is refused.

    Refusing `192.0.2.100/24` (rather than quietly masking it) matters in a firewall:
    the writer meant either the host or the network, and guessing wrong opens a hole.
    """
    if "%" in text:
        raise SpecError(f"{clip(text)} has a scope id: write the address without %...")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        pass
    else:
        return not_mapped(text, network)
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SpecError(
            f"{clip(text)} is not an IP address or CIDR (like 192.0.2.0/24 or 2001:db8::/32)"
        ) from None
    not_mapped(text, loose)
    host = text.split("/", 1)[0]
    raise SpecError(
        f"{text} has host bits set; did you mean {loose} or {host}/{loose.max_prefixlen}?"
    )


def not_mapped(text: str, network: Network) -> Network:
    """IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are how a dual-stack socket shows an
    IPv4 peer; on the wire that peer sends IPv4, so a rule on the mapped form matches
    nothing and the writer's intent (the IPv4 address) silently goes unprotected."""
    if not isinstance(network, ipaddress.IPv6Network) or not network.subnet_of(MAPPED):
        return network
    first = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
    meant = ipaddress.IPv4Network((first, network.prefixlen - MAPPED.prefixlen))
    raise SpecError(
        f"{clip(text)} is an IPv4-mapped IPv6 address: no packet on the wire carries one "
        f"(an IPv4 peer sends IPv4), so it would match nothing; write {meant_text(meant)}"
    )


def meant_text(network: ipaddress.IPv4Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def check_name(text: str, what: str) -> str:
    """A container, compose project or service name as Docker and Compose accept them."""
    if not _NAME.fullmatch(text):
        raise SpecError(
            f"{clip(text)} is not a valid {what}: use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit"
        )
    return text


def parse_label_selector(text: str) -> tuple[str, str]:
    """`key=value` as a pair; the value may be empty, as Docker labels can be."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(ch.isspace() for ch in key):
        raise SpecError(f"{clip(text)} is not a label selector: write key=value, like tier=db")
    return key, value
