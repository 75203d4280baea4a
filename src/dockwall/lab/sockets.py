"""Waits until a lab listener's sockets are bound, read from /proc, not by probing.

The listener is a fresh Python process: on a busy machine it can take a second to bind,
and a probe sent before that sees a refused port and a test reads it as the firewall's
doing. Probing would also put packets through the firewall under test; the kernel's
socket tables of the listener's namespace (/proc/PID/net/...) say it without traffic.
"""

from __future__ import annotations

import time
from pathlib import Path

from dockwall.errors import DockwallError

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column
UDP_BOUND = "07"  # TCP_CLOSE: how a bound, unconnected UDP socket shows
TABLES = {("tcp", 4): "tcp", ("tcp", 6): "tcp6", ("udp", 4): "udp", ("udp", 6): "udp6"}
WAIT_SECONDS = 30.0


def bound_ports(pid: int, proto: str, family: int) -> set[int]:
    """The local ports with a listening (TCP) or bound (UDP) socket in PID's namespace."""
    want = LISTEN if proto == "tcp" else UDP_BOUND
    table = Path(f"/proc/{pid}/net/{TABLES[proto, family]}")
    try:
        lines = table.read_text().splitlines()[1:]
    except FileNotFoundError:
        return set()
    ports = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[3] == want:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def missing_sockets(pid: int, wanted: set[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
    """Those of `wanted` (proto, family, port) not yet bound in PID's namespace."""
    by_table = {(p, f): bound_ports(pid, p, f) for p, f, _ in wanted}
    return {(p, f, port) for p, f, port in wanted if port not in by_table[p, f]}


def wait_bound(pid: int, wanted: set[tuple[str, int, int]], log_path: Path) -> None:
    """Returns once every socket in `wanted` is bound; raises with the listener's log if
    that takes longer than WAIT_SECONDS (a listener that died, a port already taken)."""
    deadline = time.monotonic() + WAIT_SECONDS
    missing = missing_sockets(pid, wanted)
    while missing and time.monotonic() < deadline:
        time.sleep(0.05)
        missing = missing_sockets(pid, wanted)
    if missing:
        log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        shown = ", ".join(f"{p}/{port} (IPv{f})" for p, f, port in sorted(missing))
        raise DockwallError(f"lab listener did not bind {shown} in {WAIT_SECONDS:.0f} s: {log}")


def listener_sockets(tcp: tuple[int, ...], udp: tuple[int, ...]) -> set[tuple[str, int, int]]:
    """What a listener on the wildcard addresses of both families binds."""
    return {
        (p, f, port) for p, ports in (("tcp", tcp), ("udp", udp)) for port in ports for f in (4, 6)
    }
