"""The sockets that listen in one network namespace, and which one a packet reaches.

Read with `ss -Hlntuep` (through the Runner, entering the namespace with nsenter)
rather than /proc/net/tcp{,6} and udp{,6}: ss asks the kernel over sock_diag, which
reports IPV6_V6ONLY (`v6only:0|1`) and the owning process (`users:(("docker-proxy",...`).
/proc/net/tcp6 has neither, so it cannot tell a `[::]` listener that also takes IPv4
from one that does not, nor docker-proxy's sockets from a service's. ss is iproute2,
the same package `ip -j` already comes from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockwall.errors import CommandError, DockwallError
from dockwall.explain.addresses import format_address, parse_address
from dockwall.runner import Runner

SS_ARGV = ("ss", "-Hlntuep")
V4_MAPPED = 0xFFFF << 32
PROCESS = re.compile(r'users:\(\("((?:[^"\\]|\\.)*)"')
WILDCARDS = {"*": (6, None), "0.0.0.0": (4, None), "::": (6, None)}


@dataclass(frozen=True)
class Listener:
    """A TCP socket in LISTEN or an unconnected UDP socket; `address` None is a wildcard."""

    proto: str
    version: int
    address: int | None
    port: int
    v6only: bool = False
    device: str = ""
    process: str = ""

    def describe(self) -> str:
        if self.address is not None:
            host = format_address(self.version, self.address)
            host = f"[{host}]" if self.version == 6 else host
        elif self.version == 4:
            host = "0.0.0.0"
        else:
            host = "[::]" if self.v6only else "[::] (IPv4 too)"
        device = f"%{self.device}" if self.device else ""
        owner = f" ({self.process})" if self.process else ""
        return f"{host}{device}:{self.port}/{self.proto}{owner}"


def parse_ss(text: str) -> tuple[Listener, ...]:
    """`ss -Hlntuep` output: netid, state, queues, local and peer address, then details."""
    found: list[Listener] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            continue
        listener = parse_line(fields[0], fields[4], fields[6:])
        if listener is not None:
            found.append(listener)
    return tuple(found)


def parse_line(proto: str, local: str, details: list[str]) -> Listener | None:
    host, _, port = local.rpartition(":")
    if not port.isdigit():
        return None
    host, device = split_device(host)
    if host in WILDCARDS:
        version, address = WILDCARDS[host]
    else:
        version, address = parse_address(host)
    v6only = "v6only:1" in details or (version == 6 and host == "::" and "v6only:0" not in details)
    text = " ".join(details)
    owner = PROCESS.search(text)
    return Listener(proto, version, address, int(port), v6only, device, owner[1] if owner else "")


def split_device(host: str) -> tuple[str, str]:
    """`0.0.0.0%lo`, `[fe80::1]%eth0`, `*%eth0`: the address and the SO_BINDTODEVICE name."""
    if host.startswith("["):
        inner, _, rest = host[1:].partition("]")
        address, _, scoped = inner.partition("%")
        return address, rest.removeprefix("%") or scoped
    address, _, device = host.partition("%")
    return address, device


def accepts(sock: Listener, version: int, address: int) -> bool:
    """A v6 socket not IPV6_V6ONLY takes IPv4 too, as ::ffff:A.B.C.D (or any, if wildcard)."""
    if sock.version == version:
        return sock.address is None or sock.address == address
    if sock.version == 6 and version == 4 and not sock.v6only:
        return sock.address is None or sock.address == V4_MAPPED | address
    return False


def listener_for(
    table: tuple[Listener, ...],
    proto: str,
    version: int,
    address: int,
    port: int,
    iif: str | None,
) -> Listener | None:
    """The socket the kernel hands the packet to, or None (a TCP reset, an ICMP port
    unreachable). Like the kernel, a socket bound to the address or the device wins over
    a wildcard, and one of the packet's own family over a v4-mapped one. `iif` None is
    an interface not known by name (a container's own): device-bound sockets take it."""
    fits = [
        s
        for s in table
        if s.proto == proto
        and s.port == port
        and (not s.device or iif is None or s.device == iif)
        and accepts(s, version, address)
    ]
    if not fits:
        return None
    return max(fits, key=lambda s: (s.address is not None, bool(s.device), s.version == version))


def read_listeners(runner: Runner, netns: str | None = None) -> tuple[Listener, ...]:
    """The listening sockets of the runner's namespace, or of the one at `netns`
    (/proc/PID/ns/net of a container). Raises DockwallError when they cannot be read."""
    argv = [*SS_ARGV] if netns is None else ["nsenter", f"--net={netns}", "--", *SS_ARGV]
    try:
        return parse_ss(runner.run(argv, timeout=30).stdout)
    except CommandError as exc:
        raise DockwallError(f"`{' '.join(argv)}` failed: {exc.stderr.strip() or exc}") from exc
