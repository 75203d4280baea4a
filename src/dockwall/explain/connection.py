"""Does the connection open? The firewall's verdict plus what listens where it lands.

The verdict alone says accept for a port nothing listens on, while the client gets a
reset. So after the simulation, the socket table of the namespace the first packet
reaches is read: the host's own for a packet delivered locally, the container's for
one forwarded (a published port is DNATed before routing, so the container's socket
on the container port decides, not docker-proxy's on the host). docker-proxy only
sees what is not DNATed (a container's hairpin to the host, localhost); it accepts
and relays to the container, whose socket then decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from dockwall.errors import DockwallError
from dockwall.explain.addresses import format_endpoint, parse_address
from dockwall.explain.host import LiveContainer, LiveHost
from dockwall.explain.netfilter import PROTOCOL_NAMES
from dockwall.explain.simulate import Delivery, Explanation
from dockwall.explain.sockets import Listener, listener_for

Result = Literal["open", "refused", "rejected", "dropped", "unknown"]
Reader = Callable[[str | None], tuple[Listener, ...]]
"""Reads the listeners of a namespace: None for the host's own, else a netns path."""
PROXY = "docker-proxy"
ECHO = {1, 58}
# ICMP errors the kernel counts as soft (icmp_err_convert, icmpv6_err_convert): TCP still
# aborts its SYN on them, but a UDP socket without IP_RECVERR never hears them.
SOFT_ERRORS = ("net-unreachable", "host-unreachable", "no-route", "addr-unreachable")


@dataclass(frozen=True)
class Connection:
    result: Result
    reason: str
    rule: str | None = None
    direction: Literal["original", "reply"] | None = None
    listener: str | None = None

    def headline(self) -> str:
        return f"{self.result}: {self.reason}"


def connection(e: Explanation, state: LiveHost, read: Reader) -> Connection:
    """The answer to "can my client connect?" for one simulated connection."""
    if e.verdict == "unknown":
        return Connection("unknown", "the firewall's verdict depends on " + "; ".join(e.unknown))
    if e.verdict == "drop":
        return blocked(e)
    if e.undecided or e.delivered is None:
        what = "; ".join(e.undecided) or "where the first packet is delivered"
        return Connection("unknown", f"where the packet goes or how it ends depends on {what}")
    d = e.delivered
    if d.proto in ECHO:
        beyond = not d.local and container_at(state, d.version, d.dst) is None
        who = "whoever has it, beyond this host," if beyond else "the kernel"
        return Connection("open", f"the echo request and its reply pass; {who} answers echo")
    if d.proto not in (6, 17) or d.dport is None:
        proto = PROTOCOL_NAMES.get(d.proto, str(d.proto))
        return Connection("unknown", f"listeners are read for tcp and udp only, not {proto}")
    return landing(d, state, read)


def blocked(e: Explanation) -> Connection:
    """A REJECT on the first packet answers the client at once; anything else, and any
    verdict on the reply (a REJECT's answer then goes to the server), leaves it waiting."""
    step = e.path[-1] if e.path else None
    what = "the firewall"
    rule: str | None = None
    if step is not None:
        rule = step.rule or f"{step.where}: {step.action}"
        what = f"{step.where} `{step.rule}`" if step.rule else f"{step.where} ({step.action})"
    if e.failed == "reply":
        how = "rejected" if e.reject else "dropped"
        reason = f"the reply is {how} by {what}, so the client hears nothing"
        return Connection("dropped", reason, rule, "reply")
    if e.reject:
        reason = f"{what} answers with {e.reject}"
        if e.packet.startswith("udp ") and any(soft in e.reject for soft in SOFT_ERRORS):
            reason += ", which a UDP socket ignores (unless IP_RECVERR): it waits for a timeout"
        return Connection("rejected", reason, rule, "original")
    return Connection(
        "dropped", f"the first packet is silently dropped by {what}", rule, "original"
    )


def landing(d: Delivery, state: LiveHost, read: Reader) -> Connection:
    proto = PROTOCOL_NAMES[d.proto]
    endpoint = f"{format_endpoint(d.version, d.dst, d.dport)}/{proto}"
    assert d.dport is not None
    container = None if d.local else container_at(state, d.version, d.dst)
    if not d.local and container is None:
        return Connection(
            "open", f"both directions pass; {endpoint} is beyond this host (its listener unseen)"
        )
    where = "" if container is None else f" in container {container.name}"
    try:
        table = read(None if container is None else container_netns(container))
    except DockwallError as exc:
        return Connection("unknown", f"cannot read the sockets{where}: {exc}")
    sock = listener_for(table, proto, d.version, d.dst, d.dport, d.iif if d.local else None)
    if sock is None:
        reason = f"the firewall lets it through, but nothing listens on {endpoint}{where}"
        return Connection("refused", reason)
    if d.local and sock.process == PROXY:
        return relay(d, sock, state, read)
    reason = f"both directions pass and {sock.describe()} listens{where}"
    return Connection("open", reason, listener=sock.describe())


def relay(d: Delivery, proxy: Listener, state: LiveHost, read: Reader) -> Connection:
    """docker-proxy accepts for a published port and connects to the container's port."""
    proto = PROTOCOL_NAMES[d.proto]
    target = published_at(state, d, proto)
    if target is None:
        return Connection("unknown", f"{proxy.describe()} listens, but no container publishes it")
    container, port = target
    try:
        table = read(container_netns(container))
    except DockwallError as exc:
        return Connection(
            "unknown", f"cannot read the sockets in container {container.name}: {exc}"
        )
    inside = next(
        (
            sock
            for version, addresses in sorted(container.addresses.items())
            for address in addresses
            if (sock := listener_for(table, proto, version, address, port, None)) is not None
        ),
        None,
    )
    via = f"{proxy.describe()} relays to {container.name}:{port}/{proto}"
    if inside is not None:
        reason = f"{via}, where {inside.describe()} listens"
        return Connection("open", reason, listener=inside.describe())
    if proto == "tcp":
        # the client's handshake with docker-proxy completes; the proxy then closes it
        reason = f"{via}, where nothing listens: the proxy accepts, then closes at once"
        return Connection("refused", reason, listener=proxy.describe())
    return Connection("dropped", f"{via}, where nothing listens: no answer comes back")


def container_at(state: LiveHost, version: int, address: int) -> LiveContainer | None:
    return next((c for c in state.containers if address in c.addresses.get(version, ())), None)


def published_at(state: LiveHost, d: Delivery, proto: str) -> tuple[LiveContainer, int] | None:
    """The container and port behind a host port: bound to all addresses or to this one."""
    for container in state.containers:
        for binding in container.published:
            if (binding.host_port, binding.proto) == (d.dport, proto) and binds(binding.host_ip, d):
                return container, binding.container_port
    return None


def binds(host_ip: str, d: Delivery) -> bool:
    if host_ip in ("", "0.0.0.0", "::"):
        return True
    try:
        return parse_address(host_ip) == (d.version, d.dst)
    except DockwallError:
        return False


def container_netns(container: LiveContainer) -> str:
    if not container.pid:
        raise DockwallError(f"container {container.name} has no running process")
    return f"/proc/{container.pid}/ns/net"
