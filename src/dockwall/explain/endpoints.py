"""`--from` and `--to` into a first packet and the interface it arrives on.

The input interface is inferred the way the kernel's reverse-path check would: the
route back to the source. A source that is one of the host's own addresses is a
locally generated packet and takes the OUTPUT path.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockwall.errors import DockwallError
from dockwall.explain.addresses import parse_address
from dockwall.explain.host import LiveHost
from dockwall.explain.netfilter import PROTOCOLS
from dockwall.explain.packet import Packet, first_packet

EPHEMERAL_PORT = 41234


@dataclass(frozen=True)
class Destination:
    kind: str
    value: str
    port: int | None
    proto: str


@dataclass(frozen=True)
class Start:
    packet: Packet
    local_origin: bool


def parse_destination(text: str) -> Destination:
    """IP, IP:PORT/PROTO, [IPv6]:PORT/PROTO, container:NAME[:PORT/PROTO], host:PORT[/PROTO]."""
    for kind in ("container", "host"):
        if text.startswith(kind + ":"):
            rest = text[len(kind) + 1 :]
            name, _, port_text = rest.partition(":") if kind == "container" else ("", "", rest)
            port, proto = parse_port(port_text, text)
            return Destination(kind, name, port, proto)
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port, proto = parse_port(rest.removeprefix(":"), text)
        return Destination("address", address, port, proto)
    if text.count(":") == 1:
        address, _, port_text = text.partition(":")
        port, proto = parse_port(port_text, text)
        return Destination("address", address, port, proto)
    return Destination("address", text, None, "icmp")


def parse_port(text: str, whole: str) -> tuple[int | None, str]:
    if not text:
        return None, "icmp"
    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("tcp", "udp", "sctp"):
        raise DockwallError(f"{whole!r}: expected PORT/tcp, PORT/udp or PORT/sctp (port 1-65535)")
    return int(port), proto


def container_address(state: LiveHost, name: str, version: int | None) -> tuple[int, int]:
    container = state.container(name)
    if container is None:
        raise DockwallError(f"no running container named {name!r}")
    for each in (version,) if version else (4, 6):
        if container.addresses.get(each):
            return each, container.addresses[each][0]
    raise DockwallError(f"container {name!r} has no IPv{version or 4} address")


def resolve_source(state: LiveHost, text: str, version: int | None) -> tuple[int, int]:
    if text.startswith("container:"):
        return container_address(state, text.removeprefix("container:"), version)
    return parse_address(text)


def host_address(state: LiveHost, version: int) -> int:
    """The host's address a remote client would use: the one on the default route's interface."""
    default = state.net.lookup(version, 0 if version == 4 else 1 << 127 | 1)
    if default is not None:
        found = state.net.source_address(version, default.dev)
        if found is not None:
            return found
    for a in state.net.addresses:
        if a.version == version and a.scope == "global":
            return a.address
    raise DockwallError(f"the host has no global IPv{version} address")


def start(state: LiveHost, source: str, destination: str, family: int | None = None) -> Start:
    dest = parse_destination(destination)
    explicit = None if source.startswith("container:") else parse_address(source)[0]
    version, src = resolve_source(state, source, explicit or family)
    if dest.kind == "host":
        dst = host_address(state, version)
    elif dest.kind == "container":
        dst = container_address(state, dest.value, version)[1]
    else:
        dst_version, dst = parse_address(dest.value)
        if dst_version != version:
            if source.startswith("container:"):
                version, src = container_address(
                    state, source.removeprefix("container:"), dst_version
                )
            else:
                raise DockwallError(f"{source} and {dest.value} are different IP versions")
    proto = (
        PROTOCOLS["icmp" if version == 4 else "icmpv6"]
        if dest.proto == "icmp"
        else PROTOCOLS[dest.proto]
    )
    sport = EPHEMERAL_PORT if dest.port is not None else None
    packet = first_packet(version, proto, src, dst, sport=sport, dport=dest.port)
    local = state.net.is_local(version, src)
    if not local:
        packet.iif = inbound_interface(state, version, src)
    return Start(packet, local)


def inbound_interface(state: LiveHost, version: int, source: int) -> str:
    route = state.net.lookup(version, source)
    if route is None:
        raise DockwallError("no route back to the source: the kernel would drop its packets")
    return route.dev
