"""A tiny TCP and UDP responder that lab namespaces and containers run.

A probe counts a port as open when TCP connects or a UDP datagram is answered, so this
program only has to accept and echo. It runs from the host's Python inside the target
network namespace (nsenter), which is why the lab image needs nothing but busybox.
"""

from __future__ import annotations

import argparse
import selectors
import socket
from collections.abc import Sequence

BANNER = b"dockwall-lab\n"


def bound_socket(kind: int, address: str, port: int) -> socket.socket:
    """A listening (TCP) or bound (UDP) socket; IPv6 sockets are v6-only to avoid clashes."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(128)
    sock.setblocking(False)
    return sock


def serve(addresses: Sequence[str], tcp_ports: Sequence[int], udp_ports: Sequence[int]) -> None:
    """Answers forever; the lab stops it with a signal."""
    selector = selectors.DefaultSelector()
    for address in addresses:
        for port in tcp_ports:
            selector.register(bound_socket(socket.SOCK_STREAM, address, port), selectors.EVENT_READ)
        for port in udp_ports:
            selector.register(bound_socket(socket.SOCK_DGRAM, address, port), selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            answer(key.fileobj)  # type: ignore[arg-type]


def answer(sock: socket.socket) -> None:
    """Greets a TCP client and closes, or echoes a UDP datagram back to its sender."""
    try:
        if sock.type == socket.SOCK_STREAM:
            conn, _ = sock.accept()
            with conn:
                conn.setblocking(True)
                conn.settimeout(1.0)
                conn.sendall(BANNER)
        else:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)
    except OSError:
        return


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dockwall-lab-listener")
    parser.add_argument("--lab", help="the lab this listener belongs to, so teardown finds it")
    parser.add_argument("--addr", action="append", default=[])
    parser.add_argument("--tcp", type=int, action="append", default=[])
    parser.add_argument("--udp", type=int, action="append", default=[])
    args = parser.parse_args(argv)
    serve(args.addr or ["0.0.0.0", "::"], args.tcp, args.udp)


if __name__ == "__main__":
    main()
